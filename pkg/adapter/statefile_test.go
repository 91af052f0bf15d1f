// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveStateFile(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"one\n", "two\n"} {
		if err := SaveStateFile(dir, "state.json", []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "state.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	// A temporary file left by a crash is removed; the state file stays.
	left := filepath.Join(dir, ".state.json.12345")
	if err := os.WriteFile(left, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	CleanStateTemp(dir, "state.json")
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("temporary file still there: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files left, want the state file only", len(entries))
	}
	if err := SaveStateFile(filepath.Join(dir, "missing"), "state.json", nil); err == nil {
		t.Fatal("saving into a missing directory succeeded")
	}
}
