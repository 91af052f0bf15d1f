// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClockCheck(t *testing.T) {
	tests := []struct {
		skew time.Duration
		want string
	}{
		{0, "PASS"},
		{20 * time.Second, "WARN"},
		{-3 * time.Minute, "FAIL"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(tt.skew).UTC().Format(http.TimeFormat))
		}))
		c := clockCheck(context.Background(), srv.URL)
		srv.Close()
		if c.Result != tt.want {
			t.Errorf("skew %v: %s (%s), want %s", tt.skew, c.Result, c.Detail, tt.want)
		}
	}
	if c := clockCheck(context.Background(), "http://127.0.0.1:1"); c.Result != "WARN" || !strings.Contains(c.Detail, "not reachable") {
		t.Errorf("unreachable backend: %+v", c)
	}
}

// TestDoctorPlatformChecks runs doctor against a fake admin socket that
// reports a platform in each state herald can be in.
func TestDoctorPlatformChecks(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rep := StatusReport{PID: 42, StatusLine: "ready", Platforms: []PlatformReport{
		{Name: "ok", Phase: "connected"},
		{Name: "tg", Type: "telegram", Phase: "connected", Alarm: "409 Conflict: another getUpdates poller or a webhook uses this bot token"},
		{Name: "fs", Phase: "fatal", Error: "feishu: bootstrap: unauthorized"},
		{Name: "dc", Phase: "fatal", Error: "discord: close 4014: disallowed intents"},
		{Name: "sl", Phase: "reconnecting", Error: "dial tcp: connection refused"},
	}, LastReloadError: "herald.yaml:3:5: x: unknown key"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(rep)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	os.Chmod(dir, 0o700)
	cfg := filepath.Join(dir, "herald.yaml")
	os.WriteFile(cfg, []byte("state_dir: "+dir+"\n"), 0o600)
	var out bytes.Buffer
	err = Doctor(context.Background(), InspectOptions{ConfigPath: cfg, AdminSocket: sock, CredentialsDir: dir, JSON: true, Out: &out})
	if ExitCode(err) != ExitFailure {
		t.Fatalf("doctor: %v, want a failure", err)
	}
	var doc struct {
		OK     bool
		Checks []Check
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := map[string]Check{}
	for _, c := range doc.Checks {
		got[c.Name] = c
	}
	want := map[string]string{
		"platform ok": "PASS", "platform tg": "FAIL", "platform fs": "FAIL", "platform dc": "FAIL",
		"platform sl": "WARN", "reload": "FAIL", "config": "PASS", "credentials directory": "PASS",
	}
	for name, res := range want {
		if got[name].Result != res {
			t.Errorf("%s: %+v, want %s", name, got[name], res)
		}
	}
	if f := got["platform tg"].Fix; !strings.Contains(f, "only one consumer") || !strings.Contains(f, "another gateway, e.g. Hermes") || !strings.Contains(f, "platforms.telegram.enabled: false") {
		t.Errorf("409 fix: %q", got["platform tg"].Fix)
	}
	if !strings.Contains(got["platform dc"].Fix, "intents") {
		t.Errorf("4014 fix: %q", got["platform dc"].Fix)
	}
	// Credentials are copied at start and a reload keeps an adapter whose
	// settings did not change: only a restart can bring a fatal one back.
	for _, name := range []string{"platform fs", "platform dc"} {
		if fix := got[name].Fix; !strings.Contains(fix, "systemctl restart herald.service") || strings.Contains(fix, "systemctl reload") {
			t.Errorf("%s fix %q: want systemctl restart, never reload", name, fix)
		}
	}
	if doc.OK {
		t.Error("ok: true with failures")
	}
}
