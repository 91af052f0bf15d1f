// SPDX-License-Identifier: Apache-2.0

package storetest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/dispatch/storetest"
	"github.com/heraldgw/herald/pkg/store"
)

// TestSQLite runs the store contract against the SQLite store; a reopen
// opens the same database file.
func TestSQLite(t *testing.T) {
	storetest.Run(t, sqlite)
	storetest.RunStatus(t, sqlite)
}

// sqlite opens the database file of one test.
func sqlite(t *testing.T) storetest.Opener {
	path := filepath.Join(t.TempDir(), "herald.db")
	return func(t *testing.T, now func() time.Time) storetest.Backend {
		t.Helper()
		s, err := store.Open(context.Background(), path, store.Options{SyncFull: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}
