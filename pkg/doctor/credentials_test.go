// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
)

// secretConfig writes a configuration naming three credentials and a
// secret file, and loads it. (Only the webhook adapter is registered in
// this package's tests; its instances stand for the other platforms.)
func secretConfig(t *testing.T, dir, keyFile string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "herald.yaml")
	yaml := `state_dir: ` + dir + `/state
agent:
  kind: openai
  url: http://127.0.0.1:9
  key: {file: ` + keyFile + `}
platforms:
  telegram:
    type: webhook
    allow_all: true
    secret: {credential: telegram-token}
  slack:
    type: webhook
    allow_all: true
    secret: {credential: slack-bot-token}
    outbound_secret: {credential: slack-app-token}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// secretDirs makes a temporary directory with a credentials directory
// holding the named credentials, and the agent's key file beside it.
func secretDirs(t *testing.T, credentials ...string) (dir, credDir, keyFile string) {
	t.Helper()
	dir = t.TempDir()
	credDir = filepath.Join(dir, "credentials")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "agent-key")
	paths := []string{keyFile}
	for _, c := range credentials {
		paths = append(paths, filepath.Join(credDir, c))
	}
	for _, p := range paths {
		if err := os.WriteFile(p, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, credDir, keyFile
}

// An unprivileged doctor cannot look into /etc/herald/credentials (0700,
// root): a file it cannot stat is skipped with a note that the check needs
// root, never reported as missing with "create it". A file that really is
// missing still fails with that fix.
func TestCredentialChecksPermissionDenied(t *testing.T) {
	dir, credDir, keyFile := secretDirs(t, "slack-bot-token")
	cfg := secretConfig(t, dir, keyFile)
	denied := filepath.Join(credDir, "telegram-token")
	// Tests run as root, which no file mode stops: the EACCES an
	// unprivileged stat gets is injected.
	stat := func(p string) (os.FileInfo, error) {
		if p == denied {
			return nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.EACCES}
		}
		return os.Stat(p)
	}
	got := map[string]Check{}
	for _, c := range credentialChecks(cfg, credDir, stat) {
		got[c.Name] = c
	}
	tg := got["credential platforms.telegram.secret"]
	if tg.Result != "SKIP" || !strings.Contains(tg.Detail, "needs root") || strings.Contains(tg.Fix, "create") || !strings.Contains(tg.Fix, "root") {
		t.Errorf("unreadable credential: %+v, want SKIP saying the check needs root", tg)
	}
	missing := got["credential platforms.slack.outbound_secret"]
	if missing.Result != "FAIL" || !strings.Contains(missing.Fix, "create "+filepath.Join(credDir, "slack-app-token")) {
		t.Errorf("missing credential: %+v, want FAIL with the fix to create it", missing)
	}
	for _, name := range []string{"credential platforms.slack.secret", "credential agent.key"} {
		if got[name].Result != "PASS" {
			t.Errorf("%s: %+v, want PASS", name, got[name])
		}
	}
}

// A secret file changed after herald started is not in use: doctor warns
// "restart to apply". The start time is made up around the files' real
// change times (which no test can set).
func TestSecretsCurrentCheck(t *testing.T) {
	dir, credDir, keyFile := secretDirs(t, "telegram-token", "slack-bot-token", "slack-app-token")
	files := secretFiles(secretConfig(t, dir, keyFile), credDir)
	if len(files) != 4 || files[0].Key != "agent.key" || files[0].Path != keyFile || files[0].Credential ||
		files[3].Key != "platforms.telegram.secret" || files[3].Path != filepath.Join(credDir, "telegram-token") || !files[3].Credential {
		t.Fatalf("secretFiles: %+v", files)
	}
	now := time.Now()

	before := now.Add(-time.Hour) // herald started before the files were written
	c := secretsCurrentCheck(files, before, "herald.service", os.Stat)
	if c.Result != "WARN" || !strings.Contains(c.Fix, "restart to apply: systemctl restart herald.service") ||
		!strings.Contains(c.Detail, filepath.Join(credDir, "telegram-token")) || !strings.Contains(c.Detail, keyFile) {
		t.Errorf("files changed after the start: %+v, want WARN naming them, restart to apply", c)
	}

	after := now.Add(time.Hour) // herald started after they were written
	if c := secretsCurrentCheck(files, after, "herald.service", os.Stat); c.Result != "PASS" {
		t.Errorf("files older than the start: %+v, want PASS", c)
	}

	// Unprivileged: nothing to compare, and it says why.
	denied := func(p string) (os.FileInfo, error) {
		if strings.HasPrefix(p, credDir) {
			return nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.EACCES}
		}
		return os.Stat(p)
	}
	if c := secretsCurrentCheck(files, after, "herald.service", denied); c.Result != "SKIP" || !strings.Contains(c.Detail, "needs root") {
		t.Errorf("credentials out of reach: %+v, want SKIP needing root", c)
	}
	// A change it can see is reported even when others are out of reach.
	if c := secretsCurrentCheck(files, before, "herald.service", denied); c.Result != "WARN" || !strings.Contains(c.Detail, keyFile) {
		t.Errorf("one visible change: %+v, want WARN", c)
	}

	// A missing file is left to the credential checks.
	if err := os.Remove(filepath.Join(credDir, "slack-app-token")); err != nil {
		t.Fatal(err)
	}
	if changed, denied := changedSecrets(files, before, os.Stat); len(changed) != 3 || len(denied) != 0 {
		t.Errorf("with one file missing: changed %v, denied %v", changed, denied)
	}
}

// fakeAdmin serves the admin endpoint's reload and status on a unix socket.
func fakeAdmin(t *testing.T, rep adminapi.StatusReport) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(adminapi.ReloadAnswer{OK: true, Status: "ready: 1/1 platforms connected"})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(rep) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// `herald reload` warns when a secret file changed after herald started:
// the reload is applied, the new secret is not.
func TestReloadWarnsOfChangedSecrets(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "agent-key")
	if err := os.WriteFile(keyFile, []byte("sk-new"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := secretConfig(t, dir, keyFile)
	for _, tt := range []struct {
		started time.Time
		warn    bool
	}{
		{time.Now().Add(-time.Hour), true},
		{time.Now().Add(time.Hour), false},
	} {
		sock := fakeAdmin(t, adminapi.StatusReport{Config: cfg.File, StartedAt: tt.started})
		var out bytes.Buffer
		if err := Reload(context.Background(), sock, &out); err != nil {
			t.Fatalf("reload: %v", err)
		}
		got := out.String()
		if !strings.HasPrefix(got, "reloaded: ready") {
			t.Errorf("reload output %q", got)
		}
		warned := strings.Contains(got, "warning: "+keyFile+" (agent.key) changed at") &&
			strings.Contains(got, "restart to apply: systemctl restart herald.service")
		if warned != tt.warn {
			t.Errorf("herald started %v: output %q, want a warning: %v", tt.started, got, tt.warn)
		}
	}
}
