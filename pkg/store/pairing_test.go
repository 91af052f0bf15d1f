// SPDX-License-Identifier: Apache-2.0

package store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadPairingImport: the parser both stores import with. A missing
// file is not an error; a good one gives its users and the SHA-256 of its
// bytes; malformed JSON, unknown fields, empty ids and an unreadable path
// are errors. (The import itself, once per file, is in the store contract
// of pkg/dispatch/storetest.)
func TestReadPairingImport(t *testing.T) {
	dir := t.TempDir()
	if _, _, found, err := ReadPairingImport(filepath.Join(dir, PairingImportFile)); found || err != nil {
		t.Fatalf("missing file: found=%v err=%v", found, err)
	}
	good := []byte(`{"approved":{"telegram":["111","222"],"slack":["U1"]}}`)
	path := filepath.Join(dir, "good.json")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	in, digest, found, err := ReadPairingImport(path)
	sum := sha256.Sum256(good)
	if err != nil || !found || digest != hex.EncodeToString(sum[:]) ||
		len(in.Approved) != 2 || !slices.Equal(in.Approved["telegram"], []string{"111", "222"}) || !slices.Equal(in.Approved["slack"], []string{"U1"}) {
		t.Fatalf("good file: %+v %q %v %v", in, digest, found, err)
	}
	for _, bad := range []string{`{"approved":`, `{"approve":{}}`, `{"approved":{"telegram":[""]}}`, `{"approved":{"":["1"]}}`} {
		path := filepath.Join(t.TempDir(), PairingImportFile)
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := ReadPairingImport(path); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, _, _, err := ReadPairingImport(dir); err == nil {
		t.Error("a directory: no error")
	}
}
