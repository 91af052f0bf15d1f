// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
)

// LoadState decodes the JSON file name in dir (an adapter's Env.StateDir)
// into v, reading at most max bytes. It reports false, and no error, when
// dir is "" (state kept in memory only) or there is no file yet. An error
// says why a file that exists cannot be used; the caller checks the
// fields of v it relies on.
func LoadState(dir, name string, max int64, v any) (bool, error) {
	if dir == "" {
		return false, nil
	}
	fh, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return false, err
	}
	if int64(len(b)) > max {
		return false, fmt.Errorf("larger than %d bytes", max)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode: %w", err)
	}
	return true, nil
}

// SaveState writes v as indented JSON to the file name in dir with
// SaveStateFile; with dir "" it writes nothing.
func SaveState(dir, name string, v any) error {
	if dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return SaveStateFile(dir, name, append(b, '\n'))
}

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

// SaveStreak logs the outcome of a state file saved again and again: the
// first failure of a streak at warning level, the later ones only
// counted, and the first success after them at info level with the count.
// The zero value is ready; the caller serializes the calls.
type SaveStreak struct{ failed int }

// Done records one save: err nil for success. log carries the adapter's
// fields; prefix starts the messages ("discord"), what names what is saved
// ("the session") and lost says what a failure costs. It reports whether
// the save succeeded.
func (s *SaveStreak) Done(log *logrus.Entry, err error, prefix, what, lost string) bool {
	if err != nil {
		if s.failed == 0 {
			log.WithError(err).Warn(prefix + ": cannot save " + what + ": " + lost)
		}
		s.failed++
		return false
	}
	if s.failed > 0 {
		log.WithField("failed_saves", s.failed).Info(prefix + ": saving " + what + " works again")
		s.failed = 0
	}
	return true
}

// Failed returns the failures of the current streak.
func (s *SaveStreak) Failed() int { return s.failed }

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
