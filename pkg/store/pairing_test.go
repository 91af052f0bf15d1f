// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func paired(t *testing.T, s *Store) []string {
	t.Helper()
	_, users, err := s.Pairings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range users {
		out = append(out, u.Platform+"/"+u.UserID)
	}
	sort.Strings(out)
	return out
}

// The import file approves its users once: a restart (a second import of
// the same file) neither duplicates them nor brings back a revoked one.
func TestImportPairingFileOnce(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), PairingImportFile)

	if n, fresh, err := s.ImportPairingFile(ctx, path); err != nil || fresh || n != 0 {
		t.Fatalf("missing file: %d %v %v", n, fresh, err)
	}
	if err := os.WriteFile(path, []byte(`{"approved":{"telegram":["111","222"],"slack":["U1"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n, fresh, err := s.ImportPairingFile(ctx, path)
	if err != nil || !fresh || n != 3 {
		t.Fatalf("first import: %d %v %v", n, fresh, err)
	}
	if got := strings.Join(paired(t, s), " "); got != "slack/U1 telegram/111 telegram/222" {
		t.Fatalf("paired after import: %s", got)
	}
	if ok, err := s.RevokePairing(ctx, "telegram", "222"); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	n, fresh, err = s.ImportPairingFile(ctx, path)
	if err != nil || fresh || n != 0 {
		t.Fatalf("second import: %d %v %v", n, fresh, err)
	}
	if got := strings.Join(paired(t, s), " "); got != "slack/U1 telegram/111" {
		t.Fatalf("paired after second import: %s", got)
	}

	// A new file (a later migration) adds its new users only.
	if err := os.WriteFile(path, []byte(`{"approved":{"telegram":["111","333"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, fresh, err := s.ImportPairingFile(ctx, path); err != nil || !fresh || n != 1 {
		t.Fatalf("new file: %d %v %v", n, fresh, err)
	}
}

func TestImportPairingFileBad(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for _, bad := range []string{`{"approved":`, `{"approve":{}}`, `{"approved":{"telegram":[""]}}`} {
		path := filepath.Join(t.TempDir(), PairingImportFile)
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ImportPairingFile(ctx, path); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if got := paired(t, s); len(got) != 0 {
		t.Fatalf("paired after bad files: %v", got)
	}
	// A bad file is not recorded: fixed, it imports.
	path := filepath.Join(t.TempDir(), PairingImportFile)
	os.WriteFile(path, []byte(`{"approved":{"telegram":["1"]}}`), 0o600)
	if n, fresh, err := s.ImportPairingFile(ctx, path); err != nil || !fresh || n != 1 {
		t.Fatalf("fixed file: %d %v %v", n, fresh, err)
	}
}
