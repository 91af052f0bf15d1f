// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"os"
	"path/filepath"
)

// SaveStateFile writes data to the file name in dir (an adapter's
// Env.StateDir) atomically: a temporary file in the same directory (mode
// 0600), fsync, rename over the old file, fsync of the directory. A crash
// leaves either the old or the new file, never a torn one; a temporary
// file it may leave is removed by CleanStateTemp.
func SaveStateFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
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
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	done = true
	return SyncDir(dir)
}

// CleanStateTemp removes the temporary files of SaveStateFile for name
// that a crash left in dir.
func CleanStateTemp(dir, name string) {
	m, _ := filepath.Glob(filepath.Join(dir, "."+name+".*"))
	for _, p := range m {
		os.Remove(p)
	}
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
