// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/metrics"
)

// TestReferenceCurrent fails when docs/metrics.md is not what the registry
// produces now: a metric was added, renamed or re-described without
// regenerating the reference.
func TestReferenceCurrent(t *testing.T) {
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "metrics.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go run ./scripts/genmetrics -o docs/metrics.md`", path)
	}
}

// TestReferenceListsEveryMetric checks the reference against the registry
// through a second path: every family a fresh registry gathers (the ones
// with a series from the start) is a row with its type.
func TestReferenceListsEveryMetric(t *testing.T) {
	doc, err := render()
	if err != nil {
		t.Fatal(err)
	}
	families, err := metrics.New("v").Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) == 0 {
		t.Fatal("registry gathered nothing")
	}
	for _, f := range families {
		typ := strings.ToLower(f.GetType().String())
		if !bytes.Contains(doc, []byte("| `"+f.GetName()+"` | "+typ+" |")) {
			t.Errorf("reference has no %s row for %s", typ, f.GetName())
		}
	}
	// Vectors without a series yet are listed too.
	for _, name := range []string{"herald_inbound_messages_total", "herald_adapter_state"} {
		if !bytes.Contains(doc, []byte("| `"+name+"` |")) {
			t.Errorf("reference misses %s", name)
		}
	}
}
