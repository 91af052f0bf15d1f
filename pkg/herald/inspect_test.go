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

	_ "github.com/heraldgw/herald/pkg/adapter/telegram"
	_ "github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
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

// TestBootCheck: a platform that connects out (telegram) needs herald.service
// enabled; a webhook-only configuration is fine with socket activation.
func TestBootCheck(t *testing.T) {
	const (
		webhookOnly = "platforms:\n  webhook: {allow_all: true, insecure_no_signature: true}\n"
		withTG      = "platforms:\n  webhook: {allow_all: true, insecure_no_signature: true}\n" +
			"  telegram: {allow_all: true, token: {file: /nonexistent}}\n"
		tgOff = "platforms:\n  telegram: {enabled: false, allow_all: true, token: {file: /nonexistent}}\n"
	)
	tests := []struct {
		name, yaml, state string
		user              bool
		want, fix, detail string
	}{
		{"telegram, enabled", withTG, "enabled", false, "PASS", "", "is enabled"},
		{"telegram, disabled", withTG, "disabled", false, "FAIL", "systemctl enable herald", "telegram needs it running"},
		{"telegram, user manager", withTG, "disabled", true, "FAIL", "systemctl --user enable herald", ""},
		{"telegram, masked", withTG, "masked", false, "FAIL", "systemctl unmask herald && systemctl enable herald", "is masked"},
		{"telegram, enabled until reboot", withTG, "enabled-runtime", false, "FAIL", "systemctl enable herald", "until the next boot"},
		{"telegram off, disabled", tgOff, "disabled", false, "PASS", "", "no enabled platform needs"},
		{"webhook only, disabled", webhookOnly, "disabled", false, "PASS", "", "first request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("herald.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c := bootCheck(cfg, &unitstate.UnitStatus{Unit: "herald.service", LoadState: "loaded", UnitFileState: tt.state}, tt.user)
			if c == nil {
				t.Fatal("no check")
			}
			if c.Result != tt.want || c.Fix != tt.fix || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("%+v, want %s with fix %q and detail containing %q", *c, tt.want, tt.fix, tt.detail)
			}
		})
	}
	cfg, err := config.Parse("herald.yaml", []byte(withTG))
	if err != nil {
		t.Fatal(err)
	}
	if c := bootCheck(cfg, nil, false); c != nil {
		t.Errorf("without a unit: %+v, want no check", *c)
	}
	if c := bootCheck(nil, &unitstate.UnitStatus{Unit: "herald.service", UnitFileState: "disabled"}, false); c != nil {
		t.Errorf("without a configuration: %+v, want no check", *c)
	}
}
