// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"fmt"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// cursorFile is the name of the id of the last event stored in the
// platform's States.
const cursorFile = "last-event-id"

// maxEventID bounds an event id read back (signal-cli's are
// "<start time>-<sequence>", about 30 bytes).
const maxEventID = 256

// cursor is the id of the last event handled, kept across restarts in
// the platform's States when they keep anything. Losing an update (a crash
// between storing an event and saving its id) only makes the daemon send
// events again, which the store deduplicates.
type cursor struct {
	states adapter.States
	mu     sync.Mutex
	id     string
	loaded bool
}

func newCursor(states adapter.States) *cursor {
	return &cursor{states: states, loaded: !adapter.Keeps(states)}
}

// get returns the last id, reading it on first use. An unreadable one is
// logged and taken as no id: the stream then starts with new events.
func (c *cursor) get(log *logrus.Entry) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		c.loaded = true
		adapter.CleanStateTemp(c.states, cursorFile)
		b, ok, err := c.states.Load(cursorFile, maxEventID)
		switch {
		case err != nil:
			log.WithError(err).WithField("file", adapter.StateWhere(c.states, cursorFile)).Warn("signal: cannot read the last event id; starting with new events")
		case !ok:
		case strings.ContainsAny(strings.TrimSpace(string(b)), "\r\n\x00"):
			log.WithField("file", adapter.StateWhere(c.states, cursorFile)).Warn("signal: the last event id file is corrupt; starting with new events")
		default:
			c.id = strings.TrimSpace(string(b))
		}
	}
	return c.id
}

// set records id, and saves it in the States if they keep anything.
func (c *cursor) set(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id, c.loaded = id, true
	if !adapter.Keeps(c.states) {
		return nil
	}
	if err := c.states.Save(cursorFile, []byte(id+"\n")); err != nil {
		return fmt.Errorf("signal: cursor: %w", err)
	}
	return nil
}
