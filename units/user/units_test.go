// SPDX-License-Identifier: Apache-2.0

package user

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// Every unit file of this directory is embedded, byte for byte: a unit
// added here without matching the embed patterns would be missing from
// `herald install --user`.
func TestEmbeddedEqualsDirectory(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		onDisk = append(onDisk, e.Name())
		want, err := os.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		got, err := File(e.Name())
		if err != nil {
			t.Fatalf("%s is not embedded: %v", e.Name(), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("embedded %s differs from the file", e.Name())
		}
	}
	slices.Sort(onDisk)
	if got := Names(); !slices.Equal(got, onDisk) {
		t.Fatalf("embedded %v, directory has %v", got, onDisk)
	}
	for _, n := range []string{"herald.service", "herald.socket", "herald-admin.socket"} {
		if !slices.Contains(onDisk, n) {
			t.Errorf("%s missing", n)
		}
	}
}
