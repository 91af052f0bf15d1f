// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// window is the resume window of these tests.
const window = 5 * time.Minute

const testToken = "MTAwMDAwMDAwMDAwMDAwMDAx.GxYzAb.c2VjcmV0LXRva2VuLXBhcnQtb2YtdGhlLWJvdA"

func validSaved(now time.Time) *savedSession {
	return &savedSession{
		Version:   stateVersion,
		SessionID: "9f2c0a3b5d7e41f6a8b0c1d2e3f40516",
		Seq:       42,
		ResumeURL: "wss://gateway-us-east1-b.discord.gg",
		BotID:     "100000000000000001",
		Intents:   DefaultIntents,
		TokenFP:   tokenFingerprint(testToken),
		SavedAt:   now.Add(-time.Minute).UTC(),
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := stateFile{states: adapter.DirStates(dir)}
	now := time.Now()
	want := validSaved(now)
	if err := f.save(want); err != nil {
		t.Fatalf("save: %v", err)
	}
	got, err := f.load(now, window, tokenFingerprint(testToken), DefaultIntents)
	if err != nil || got == nil {
		t.Fatalf("load = %v, %v", got, err)
	}
	if !got.SavedAt.Equal(want.SavedAt) {
		t.Errorf("saved_at %v, want %v", got.SavedAt, want.SavedAt)
	}
	got.SavedAt = want.SavedAt
	if *got != *want {
		t.Errorf("load = %+v, want %+v", *got, *want)
	}

	fi, err := os.Stat(f.where())
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	b, _ := os.ReadFile(f.where())
	if strings.Contains(string(b), testToken) || strings.Contains(string(b), "c2VjcmV0") {
		t.Errorf("state file contains the token: %s", b)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"session_id", "seq", "resume_gateway_url", "bot_id", "saved_at"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("state file lacks %q: %s", k, b)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after save, want only %s", len(ents), stateFileName)
	}

	if err := f.remove(); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := f.remove(); err != nil {
		t.Fatalf("remove of a missing file: %v", err)
	}
	if got, err := f.load(now, window, tokenFingerprint(testToken), DefaultIntents); got != nil || err != nil {
		t.Fatalf("load after remove = %v, %v; want nothing", got, err)
	}
}

func TestStateFileLoad(t *testing.T) {
	now := time.Now()
	fp := tokenFingerprint(testToken)
	for _, tc := range []struct {
		name    string
		content func() string // nil: write validSaved after mut
		mut     func(*savedSession)
		ok      bool
		ignored bool // errStateIgnored rather than a corrupt file
	}{
		{name: "valid", ok: true},
		{name: "loopback ws for the fake", mut: func(s *savedSession) { s.ResumeURL = "ws://127.0.0.1:4567/gw" }, ok: true},
		{name: "no resume url: main gateway", mut: func(s *savedSession) { s.ResumeURL = "" }, ok: true},
		{name: "seq 0", mut: func(s *savedSession) { s.Seq = 0 }, ok: true},
		{name: "just inside the window", mut: func(s *savedSession) { s.SavedAt = now.Add(-window + time.Second) }, ok: true},
		{name: "clock stepped back", mut: func(s *savedSession) { s.SavedAt = now.Add(time.Hour) }, ok: true},
		{name: "older than the window", mut: func(s *savedSession) { s.SavedAt = now.Add(-window - time.Second) }, ignored: true},
		{name: "another token", mut: func(s *savedSession) { s.TokenFP = tokenFingerprint("other") }, ignored: true},
		{name: "other intents", mut: func(s *savedSession) { s.Intents = IntentDirectMessages }, ignored: true},
		{name: "not json", content: func() string { return "session=abc\n" }},
		{name: "empty", content: func() string { return "" }},
		{name: "truncated", content: func() string {
			b, _ := json.Marshal(validSaved(now))
			return string(b[:len(b)/2])
		}},
		{name: "trailing garbage", content: func() string {
			b, _ := json.Marshal(validSaved(now))
			return string(b) + "}"
		}},
		{name: "too large", content: func() string { return `{"x":"` + strings.Repeat("a", maxStateFile) + `"}` }},
		{name: "other version", mut: func(s *savedSession) { s.Version = 2 }},
		{name: "no session id", mut: func(s *savedSession) { s.SessionID = "" }},
		{name: "no bot id", mut: func(s *savedSession) { s.BotID = "" }},
		{name: "negative seq", mut: func(s *savedSession) { s.Seq = -1 }},
		{name: "no fingerprint", mut: func(s *savedSession) { s.TokenFP = "" }},
		{name: "no saved_at", mut: func(s *savedSession) { s.SavedAt = time.Time{} }},
		{name: "plain ws off loopback", mut: func(s *savedSession) { s.ResumeURL = "ws://gateway.discord.gg" }},
		{name: "https url", mut: func(s *savedSession) { s.ResumeURL = "https://gateway.discord.gg" }},
		{name: "url without host", mut: func(s *savedSession) { s.ResumeURL = "wss:///gw" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stateFile{states: adapter.DirStates(t.TempDir())}
			var content string
			if tc.content != nil {
				content = tc.content()
			} else {
				s := validSaved(now)
				if tc.mut != nil {
					tc.mut(s)
				}
				b, _ := json.Marshal(s)
				content = string(b)
			}
			if err := os.WriteFile(f.where(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := f.load(now, window, fp, DefaultIntents)
			switch {
			case tc.ok && (err != nil || got == nil):
				t.Fatalf("load = %v, %v; want the session", got, err)
			case tc.ok:
			case got != nil:
				t.Fatalf("load = %+v, want an error", got)
			case tc.ignored != errors.Is(err, errStateIgnored):
				t.Fatalf("load error %v; ignored (not corrupt) = %v, want %v", err, errors.Is(err, errStateIgnored), tc.ignored)
			}
		})
	}
}

func TestStateFileUnreadable(t *testing.T) {
	f := stateFile{states: adapter.DirStates(t.TempDir())}
	// A directory in the file's place: unreadable whatever the user (tests
	// may run as root, which ignores file modes).
	if err := os.Mkdir(f.where(), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := f.load(time.Now(), window, "x", DefaultIntents)
	if got != nil || err == nil || errors.Is(err, errStateIgnored) {
		t.Fatalf("load = %v, %v; want a read error", got, err)
	}
	if err := f.save(validSaved(time.Now())); err == nil {
		t.Fatal("save over a directory succeeded")
	}
	ents, _ := os.ReadDir(string(f.states.(adapter.DirStates)))
	if len(ents) != 1 {
		t.Errorf("failed save left %d entries, want 1 (no temporary file)", len(ents))
	}
}

func TestStateFileCleanTemp(t *testing.T) {
	f := stateFile{states: adapter.DirStates(t.TempDir())}
	left := filepath.Join(string(f.states.(adapter.DirStates)), "."+stateFileName+".123456")
	other := filepath.Join(string(f.states.(adapter.DirStates)), "keep.me")
	for _, p := range []string{left, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.cleanTemp()
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left by a crash still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}

func TestTokenFingerprint(t *testing.T) {
	a, b := tokenFingerprint(testToken), tokenFingerprint(testToken+"x")
	if a == b || len(a) != 16 || a != tokenFingerprint(testToken) {
		t.Fatalf("fingerprints %q %q", a, b)
	}
	if strings.Contains(testToken, a) {
		t.Fatal("fingerprint is part of the token")
	}
}
