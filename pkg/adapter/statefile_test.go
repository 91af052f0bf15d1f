// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
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
	CleanStateTemp(DirStates(dir), "state.json")
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

// TestLoadSaveState: a saved value loads back; no directory and no file
// load nothing without an error; an oversized or corrupt file is an error.
func TestLoadSaveState(t *testing.T) {
	type state struct {
		Version int    `json:"version"`
		Since   string `json:"since"`
	}
	var got state
	if ok, err := LoadState(DirStates(""), "s.json", 1024, &got); ok || err != nil {
		t.Fatalf("no directory: %v %v", ok, err)
	}
	if err := SaveState(DirStates(""), "s.json", state{}); err != nil {
		t.Fatalf("save without a directory: %v", err)
	}
	dir := t.TempDir()
	if ok, err := LoadState(DirStates(dir), "s.json", 1024, &got); ok || err != nil {
		t.Fatalf("no file: %v %v", ok, err)
	}
	if err := SaveState(DirStates(dir), "s.json", state{Version: 1, Since: "s9"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := LoadState(DirStates(dir), "s.json", 1024, &got); !ok || err != nil || got != (state{1, "s9"}) {
		t.Fatalf("LoadState = %v %v %+v", ok, err, got)
	}
	if _, err := LoadState(DirStates(dir), "s.json", 8, &got); err == nil {
		t.Fatal("a file over the limit loaded")
	}
	if err := DirStates(dir).Remove("s.json"); err != nil {
		t.Fatal(err)
	}
	if ok, err := LoadState(DirStates(dir), "s.json", 1024, &got); ok || err != nil {
		t.Fatalf("after Remove: %v %v", ok, err)
	}
	if err := DirStates(dir).Remove("s.json"); err != nil {
		t.Fatalf("removing what is not there: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(DirStates(dir), "bad.json", 1024, &got); err == nil {
		t.Fatal("a corrupt file loaded")
	}
}

// TestSaveStreak: one warning per streak of failures, one info line when
// saving works again, nothing for successes in a row.
func TestSaveStreak(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	e := logrus.NewEntry(log)
	var s SaveStreak
	fail := errors.New("disk full")
	for _, err := range []error{nil, fail, fail, fail, nil, nil, fail} {
		if ok := s.Done(e, err, "x", "the cursor", "a restart repeats"); ok != (err == nil) {
			t.Fatalf("Done(%v) = %v", err, ok)
		}
	}
	var got []string
	for _, en := range hook.AllEntries() {
		got = append(got, en.Level.String()+" "+en.Message)
	}
	want := []string{"warning x: cannot save the cursor: a restart repeats", "info x: saving the cursor works again", "warning x: cannot save the cursor: a restart repeats"}
	if strings.Join(got, "|") != strings.Join(want, "|") || s.Failed() != 1 {
		t.Fatalf("logged %q, failed %d; want %q, 1", got, s.Failed(), want)
	}
}
