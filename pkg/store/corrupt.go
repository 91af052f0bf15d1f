// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"

	"modernc.org/sqlite"
)

// SQLite primary result codes that mean the database file itself is
// damaged (sqlite3.h).
const (
	sqliteCorrupt = 11 // SQLITE_CORRUPT: the database disk image is malformed
	sqliteNotADB  = 26 // SQLITE_NOTADB: file is not a database
)

// IsCorrupt reports whether err says the database itself is damaged:
// ErrCorrupt, or SQLITE_CORRUPT or SQLITE_NOTADB from any query. Nothing
// else is corruption: an I/O error, a full disk, a read-only file system,
// a lock or a cancelled context can all pass, so a restart may fix them,
// and a caller must not treat them as a store to move away.
func IsCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqliteCorrupt, sqliteNotADB:
		return true
	}
	return false
}
