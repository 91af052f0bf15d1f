// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// save writes the cursor atomically: a temporary file in the same
// directory, fsync, rename over the old file, fsync of the directory. A
// crash leaves the old or the new cursor, never a torn file.
func (f cursorFile) save(at int64) error {
	if f.dir == "" {
		return nil
	}
	b, err := json.Marshal(savedCursor{Version: cursorVersion, LastPostAt: at})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, "."+cursorFileName+".*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path()); err != nil {
		return err
	}
	done = true
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cleanTemp removes temporary files left by a crash during save.
func (f cursorFile) cleanTemp() {
	if f.dir == "" {
		return
	}
	m, _ := filepath.Glob(filepath.Join(f.dir, "."+cursorFileName+".*"))
	for _, p := range m {
		os.Remove(p)
	}
}
