// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/store/jsstore"
)

// The JetStream store has every method the daemon needs of a message
// store, so the daemon can run on either backend.
var _ msgStore = (*jsstore.Store)(nil)

// TestSQLiteBackend: a writable SQLite store has no note for STATUS=, and
// its report names its file and the space of its file system.
func TestSQLiteBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := sqliteBackend{st}
	defer b.Close()
	if n := b.note(); n != "" {
		t.Fatalf("note of a writable store: %q", n)
	}
	r := b.report()
	if r.Path != path || !r.Writable || r.TotalBytes == 0 {
		t.Fatalf("report: %+v", r)
	}
	if err := b.shrinkMemory(context.Background()); err != nil {
		t.Fatalf("shrinkMemory: %v", err)
	}
}
