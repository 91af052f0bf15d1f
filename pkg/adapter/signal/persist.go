// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// cursorFile holds the id of the last event stored, in the platform's state
// directory.
const cursorFile = "last-event-id"

// maxEventID bounds an event id read back (signal-cli's are
// "<start time>-<sequence>", about 30 bytes).
const maxEventID = 256

// cursor is the id of the last event handled, kept across restarts when
// there is a state directory. Losing an update (a crash between storing an
// event and writing its id) only makes the daemon send events again, which
// the store deduplicates: the file is replaced atomically, not synced.
type cursor struct {
	path   string
	mu     sync.Mutex
	id     string
	loaded bool
}

func newCursor(dir string) *cursor {
	c := &cursor{loaded: dir == ""}
	if dir != "" {
		c.path = filepath.Join(dir, cursorFile)
	}
	return c
}

// get returns the last id, reading the file on first use. An unreadable
// file is logged and taken as no id: the stream then starts with new events.
func (c *cursor) get(log *logrus.Entry) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		c.loaded = true
		b, err := os.ReadFile(c.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			log.WithError(err).Warn("signal: cannot read the last event id; starting with new events")
		case len(b) > maxEventID || strings.ContainsAny(strings.TrimSpace(string(b)), "\r\n\x00"):
			log.WithField("path", c.path).Warn("signal: the last event id file is corrupt; starting with new events")
		default:
			c.id = strings.TrimSpace(string(b))
		}
	}
	return c.id
}

// set records id, and writes it to the state directory if there is one.
func (c *cursor) set(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id, c.loaded = id, true
	if c.path == "" {
		return nil
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("signal: cursor: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("signal: cursor: %w", err)
	}
	return nil
}
