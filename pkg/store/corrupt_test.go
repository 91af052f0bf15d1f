// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// queryErr runs a query on the SQLite file at path and returns its error.
func queryErr(t *testing.T, dsn string) error {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	return db.QueryRowContext(context.Background(), "SELECT count(*) FROM sqlite_master").Scan(&n)
}

func TestIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not an SQLite database, not even its header, and long enough to have a page"+string(make([]byte, 4096))), 0o600); err != nil {
		t.Fatal(err)
	}
	notADB := queryErr(t, "file:"+garbage)
	cantOpen := queryErr(t, "file:"+filepath.Join(dir, "missing", "x.db")+"?mode=ro")
	if notADB == nil || cantOpen == nil {
		t.Fatalf("queries did not fail: %v, %v", notADB, cantOpen)
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"ErrCorrupt", fmt.Errorf("dispatch: recover messages: %w", ErrCorrupt), true},
		{"SQLITE_NOTADB from a query", fmt.Errorf("store: query pending: %w", notADB), true},
		{"SQLITE_CANTOPEN", fmt.Errorf("store: query pending: %w", cantOpen), false},
		{"EIO", fmt.Errorf("store: query pending: %w", syscall.EIO), false},
		{"cancelled", fmt.Errorf("store: query pending: %w", context.Canceled), false},
		{"nil", nil, false},
	} {
		if got := IsCorrupt(tt.err); got != tt.want {
			t.Errorf("%s: IsCorrupt(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
