// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/heraldgw/herald/pkg/adapter"
)

// cursorFileName is the file in the platform's state directory that holds
// the cursor.
const cursorFileName = "cursor.json"

// cursorVersion is the format of the cursor file.
const cursorVersion = 1

// savedCursor is the cursor file: the create_at (ms) of the newest post
// stored, every earlier one stored as well.
type savedCursor struct {
	Version    int   `json:"version"`
	LastPostAt int64 `json:"last_post_at"`
}

// cursorFile is where the cursor is kept; dir "" keeps it in memory only.
type cursorFile struct{ dir string }

func (f cursorFile) path() string { return filepath.Join(f.dir, cursorFileName) }

// load returns the saved cursor, 0 if there is none.
func (f cursorFile) load() (int64, error) {
	if f.dir == "" {
		return 0, nil
	}
	b, err := os.ReadFile(f.path())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var c savedCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("%s: %w", f.path(), err)
	}
	if c.Version != cursorVersion || c.LastPostAt < 0 {
		return 0, fmt.Errorf("%s: unknown version %d or negative cursor", f.path(), c.Version)
	}
	return c.LastPostAt, nil
}

// save writes the cursor atomically (adapter.SaveStateFile): a crash
// leaves the old or the new cursor, never a torn file.
func (f cursorFile) save(at int64) error {
	if f.dir == "" {
		return nil
	}
	b, err := json.Marshal(savedCursor{Version: cursorVersion, LastPostAt: at})
	if err != nil {
		return err
	}
	return adapter.SaveStateFile(f.dir, cursorFileName, append(b, '\n'))
}

// cleanTemp removes temporary files left by a crash during save.
func (f cursorFile) cleanTemp() {
	if f.dir != "" {
		adapter.CleanStateTemp(f.dir, cursorFileName)
	}
}
