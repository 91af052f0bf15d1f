// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces dir/name with data, mode 0600, for the state an
// adapter keeps in Env.StateDir: a temporary file in dir, fsync, rename
// over the old file, fsync of dir. A crash leaves either the old or the
// new file, never a torn one, and the rename is durable when it returns.
// Temporary files are named "."+name+".*"; RemoveTempFiles removes those a
// crash left behind.
func WriteFileAtomic(dir, name string, data []byte) error {
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

// RemoveTempFiles removes the temporary files of WriteFileAtomic(dir, name,
// …) left by a crash during a write.
func RemoveTempFiles(dir, name string) {
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
