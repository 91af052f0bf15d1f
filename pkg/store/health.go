// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"modernc.org/sqlite"
)

// SQLite primary result codes the store tells apart (sqlite3.h).
const (
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteReadonly = 8
	sqliteCantOpen = 14
)

// Cause names, for an operator, why a write failed because of the
// storage under the database: "disk full", "read-only file system",
// "disk quota exceeded", "I/O error" or "cannot open the database file".
// It returns "" for any other error (a bug, a constraint, a closed store).
func Cause(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ENOSPC):
		return "disk full"
	case errors.Is(err, syscall.EDQUOT):
		return "disk quota exceeded"
	case errors.Is(err, syscall.EROFS):
		return "read-only file system"
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code() & 0xff {
	case sqliteFull:
		return "disk full"
	case sqliteReadonly:
		return "read-only database"
	case sqliteIOErr:
		return "I/O error"
	case sqliteCantOpen:
		return "cannot open the database file"
	}
	return ""
}

// Health is whether the store can be written, as its last commits showed.
type Health struct {
	// Writable is false from a commit that failed for a storage reason
	// (see Cause) until the next commit that succeeds.
	Writable bool
	// Since is when Writable last changed (the store's opening at first).
	Since time.Time
	// Cause and Err describe the last failure while not writable.
	Cause string
	Err   error
	// Failures counts the failed commits since the store became
	// unwritable.
	Failures int
}

// Health returns the store's current write health.
func (s *Store) Health() Health {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.health
}

// noteCommit records the outcome of one commit: err is the storage error
// that failed it or one of its requests, nil if it went through. It calls
// OnHealth on every failure and on the recovery.
func (s *Store) noteCommit(err error) {
	cause := Cause(err)
	s.hmu.Lock()
	h := s.health
	switch {
	case cause == "" && h.Writable:
		s.hmu.Unlock()
		return
	case cause == "":
		h = Health{Writable: true, Since: time.Now()}
	default:
		if h.Writable {
			h = Health{Since: time.Now()}
		}
		h.Cause, h.Err = cause, err
		h.Failures++
	}
	s.health = h
	s.hmu.Unlock()
	if s.onHealth != nil {
		s.onHealth(h)
	}
}

// Space is the room left on the file system holding a store.
type Space struct {
	Free, Total uint64 // bytes available to an unprivileged writer, and in all
}

// FreeSpace reports the space on the file system of the database file at
// path (statfs of its directory; the file itself may not exist yet).
func FreeSpace(path string) (Space, error) {
	var st syscall.Statfs_t
	dir := filepath.Dir(path)
	if err := syscall.Statfs(dir, &st); err != nil {
		return Space{}, fmt.Errorf("store: statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return Space{Free: st.Bavail * bs, Total: st.Blocks * bs}, nil
}

// String renders s as "3.2 MiB free of 8.0 MiB".
func (s Space) String() string {
	return FormatBytes(s.Free) + " free of " + FormatBytes(s.Total)
}

// FormatBytes renders n in binary units: "0 B", "512 KiB", "3.2 GiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v >= 10 || v == float64(int(v)) {
		return fmt.Sprintf("%.0f %ciB", v, "KMGTP"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[exp])
}
