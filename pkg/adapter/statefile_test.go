// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	for _, data := range []string{"first\n", "second\n"} {
		if err := WriteFileAtomic(dir, "state.json", []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "state.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	// A temporary file left by a crash is removed; the state stays.
	left := filepath.Join(dir, ".state.json.123")
	if err := os.WriteFile(left, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	RemoveTempFiles(dir, "state.json")
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the directory, want the state file only", len(entries))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing"), "x", nil); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
