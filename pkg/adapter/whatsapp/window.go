// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"fmt"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// windowFile is the name in the platform's States (files in its state
// directory on this node: whatsapp runs on every node) that holds each
// user's last message time, so that a restarted herald still knows who is
// inside the 24-hour customer-service window.
const windowFile = "window.json"

// maxWindowFile bounds what is read: an entry is about 30 bytes.
const maxWindowFile = 64 << 20

// maxWindowUsers bounds the entries kept; beyond it the oldest go first.
const maxWindowUsers = 100_000

// windows records the last inbound message time per user (wa_id), in
// memory and, with States that keep it, on disk. Entries older than Window
// are dropped when the file is written: outside the window a missing entry
// and an old one mean the same.
type windows struct {
	mu sync.Mutex
	// states keeps the record; one that keeps nothing (adapter.Keeps)
	// keeps the times in memory only.
	states adapter.States
	last   map[string]int64
}

// load reads the saved times; a missing file is an empty record, an
// unreadable one is reported and ignored.
func (w *windows) load() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = map[string]int64{}
	var saved map[string]int64
	if _, err := adapter.LoadState(w.states, windowFile, maxWindowFile, &saved); err != nil {
		return fmt.Errorf("window: %s: %w", windowFile, err)
	}
	for k, v := range saved {
		if k != "" && v > 0 {
			w.last[k] = v
		}
	}
	return nil
}

// get returns the last message time of user, if known.
func (w *windows) get(user string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.last[user]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}

// seen records messages at the given times (unix seconds) per user and
// saves the record. A redelivered old message never moves a time back.
func (w *windows) seen(at map[string]int64, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for user, t := range at {
		if t > now.Unix() {
			t = now.Unix() // a clock ahead of ours opens no longer window
		}
		if t > w.last[user] {
			w.last[user] = t
			changed = true
		}
	}
	if !changed || !adapter.Keeps(w.states) {
		return nil
	}
	return w.save(now)
}

// save writes the record atomically, without entries older than Window.
// Called with mu held.
func (w *windows) save(now time.Time) error {
	cut := now.Add(-Window).Unix()
	for k, t := range w.last {
		if t < cut {
			delete(w.last, k)
		}
	}
	for len(w.last) > maxWindowUsers {
		oldest, ot := "", int64(0)
		for k, t := range w.last {
			if oldest == "" || t < ot {
				oldest, ot = k, t
			}
		}
		delete(w.last, oldest)
	}
	if err := adapter.SaveState(w.states, windowFile, w.last); err != nil {
		return fmt.Errorf("window: write: %w", err)
	}
	return nil
}
