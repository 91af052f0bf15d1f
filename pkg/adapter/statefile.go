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

// States is where an adapter keeps the little state it must carry across
// restarts (Discord's session, a cursor, a sync token): named values of a
// few bytes to a few hundred kilobytes, each private to one platform
// instance. DirStates keeps them in files of a directory on this node; in
// cluster mode a leased platform's values live in the cluster's store, so
// that the node taking the platform over resumes where the last holder
// stopped.
type States interface {
	// Load returns the value saved under name, reading at most max
	// bytes. It reports false, and no error, when there is none; an error
	// says why one that exists cannot be read.
	Load(name string, max int64) (data []byte, ok bool, err error)
	// Save replaces the value under name; a failure leaves the old value
	// or the new one, never a torn one.
	Save(name string, data []byte) error
	// Remove forgets the value under name; a missing value is no error.
	Remove(name string) error
}

// DirStates keeps each value in a file of the directory (an adapter's
// Env.StateDir), written with SaveStateFile. The empty DirStates keeps
// nothing: Load finds nothing and Save and Remove do nothing.
type DirStates string

// Load reads the file name.
func (d DirStates) Load(name string, max int64) ([]byte, bool, error) {
	if d == "" {
		return nil, false, nil
	}
	fh, err := os.Open(filepath.Join(string(d), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > max {
		return nil, false, fmt.Errorf("larger than %d bytes", max)
	}
	return b, true, nil
}

// Save writes the file name atomically (SaveStateFile).
func (d DirStates) Save(name string, data []byte) error {
	if d == "" {
		return nil
	}
	return SaveStateFile(string(d), name, data)
}

// Remove deletes the file name and makes the removal durable.
func (d DirStates) Remove(name string) error {
	if d == "" {
		return nil
	}
	if err := os.Remove(filepath.Join(string(d), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return SyncDir(string(d))
}

// String is the directory, for logs.
func (d DirStates) String() string { return string(d) }

// StateWhere names the value name of s for logs and errors: the file's
// path for DirStates, else what s says it is (fmt.Stringer) and name.
func StateWhere(s States, name string) string {
	switch v := s.(type) {
	case DirStates:
		return filepath.Join(string(v), name)
	case fmt.Stringer:
		return v.String() + ": " + name
	}
	return name
}

// Keeps reports whether s keeps anything: false for nil and for the empty
// DirStates (state in memory only).
func Keeps(s States) bool { return s != nil && s != DirStates("") }

// LoadState decodes the JSON value name of s into v, reading at most max
// bytes. It reports false, and no error, when s keeps nothing or there is
// no value yet. An error says why a value that exists cannot be used; the
// caller checks the fields of v it relies on.
func LoadState(s States, name string, max int64, v any) (bool, error) {
	if !Keeps(s) {
		return false, nil
	}
	b, ok, err := s.Load(name, max)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode: %w", err)
	}
	return true, nil
}

// SaveState saves v as indented JSON under name in s; when s keeps
// nothing it writes nothing.
func SaveState(s States, name string, v any) error {
	if !Keeps(s) {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.Save(name, append(b, '\n'))
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
// that a crash left in the directory of s; other States leave none.
func CleanStateTemp(s States, name string) {
	d, ok := s.(DirStates)
	if !ok || d == "" {
		return
	}
	m, _ := filepath.Glob(filepath.Join(string(d), "."+name+".*"))
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
