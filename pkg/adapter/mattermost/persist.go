// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"fmt"

	"github.com/heraldgw/herald/pkg/adapter"
)

// cursorFileName is the name of the cursor in the platform's States.
const cursorFileName = "cursor.json"

// cursorVersion is the format of the cursor file.
const cursorVersion = 1

// savedCursor is the cursor file: the create_at (ms) of the newest post
// stored, every earlier one stored as well.
type savedCursor struct {
	Version    int   `json:"version"`
	LastPostAt int64 `json:"last_post_at"`
}

// cursorFile is where the cursor is kept (Env.States); States that keep
// nothing keep it in memory only.
type cursorFile struct{ states adapter.States }

// where names the cursor for logs and errors.
func (f cursorFile) where() string { return adapter.StateWhere(f.states, cursorFileName) }

// maxCursorFile bounds what is read: a valid file is a few dozen bytes.
const maxCursorFile = 64 << 10

// load returns the saved cursor, 0 if there is none.
func (f cursorFile) load() (int64, error) {
	var c savedCursor
	ok, err := adapter.LoadState(f.states, cursorFileName, maxCursorFile, &c)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.where(), err)
	}
	if !ok {
		return 0, nil
	}
	if c.Version != cursorVersion || c.LastPostAt < 0 {
		return 0, fmt.Errorf("%s: unknown version %d or negative cursor", f.where(), c.Version)
	}
	return c.LastPostAt, nil
}

// save writes the cursor atomically (in a directory,
// adapter.SaveStateFile): a crash leaves the old or the new cursor, never
// a torn one.
func (f cursorFile) save(at int64) error {
	return adapter.SaveState(f.states, cursorFileName, savedCursor{Version: cursorVersion, LastPostAt: at})
}

// cleanTemp removes temporary files left by a crash during save.
func (f cursorFile) cleanTemp() { adapter.CleanStateTemp(f.states, cursorFileName) }
