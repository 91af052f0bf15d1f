// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestPathWithURICharacters: a store path holding '#', '?', '%' or '&'
// opens exactly that file. Concatenated into the SQLite URI, '#' cut the
// name ("a#b.db" opened "a") and '?' let the path add SQLite options.
func TestPathWithURICharacters(t *testing.T) {
	for _, name := range []string{
		"a#b.db",
		"x?mode=ro.db",
		"c?_pragma=journal_mode(DELETE)#d.db",
		"100%25 sure & more.db",
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state#dir?x=1")
			path := filepath.Join(dir, name)
			ctx := context.Background()
			s, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.AddInbound(ctx, "k", msg("e", "c", "t"), Pending); err != nil {
				s.Close()
				t.Fatal(err)
			}
			var mode string
			if err := s.wdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal (the path must not set options)", mode, err)
			}
			s.Close()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			sort.Strings(got)
			if len(got) != 1 || got[0] != name {
				t.Fatalf("files in the state directory: %q, want only %q", got, name)
			}
			s, err = Open(ctx, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if p, _ := s.Pending(ctx); len(p) != 1 {
				t.Fatalf("pending after reopen = %d, want 1", len(p))
			}
		})
	}
}
