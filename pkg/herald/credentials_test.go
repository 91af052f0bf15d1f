// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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

// An unprivileged doctor cannot look into /etc/herald/credentials (0700,
// root): a file it cannot stat is skipped with a note that the check needs
// root, never reported as missing with "create it". A file that really is
// missing still fails with that fix.
func TestCredentialChecksPermissionDenied(t *testing.T) {
	dir := t.TempDir()
	credDir := filepath.Join(dir, "credentials")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "agent-key")
	for _, p := range []string{keyFile, filepath.Join(credDir, "slack-bot-token")} {
		if err := os.WriteFile(p, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
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
