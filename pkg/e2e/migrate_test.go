// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
)

// TestMigrateHermes switches a Hermes installation to herald under the real
// systemd: a Hermes home whose Telegram bot and Feishu app are the fakes
// and whose API server is agenttest (both in the sandbox's network namespace) is migrated
// by `herald migrate hermes` as root into /etc/herald; the packaged unit
// then answers each message once, through the migrated token, allowlist,
// busy mode and API server key. No secret reaches the command's output or
// the journal.
func TestMigrateHermes(t *testing.T) {
	e := newEnv(t, envOpts{})
	const apiKey = "e2e-api-server-key-0123456789"
	agLn, err := e.s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ag := agenttest.NewOn(t, agLn)
	ag.SetKey(apiKey)
	fake := telegramtest.NewOn(t, e.s.Listen, "")
	fsLn, err := e.s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const feishuSecret = "e2e-feishu-app-secret"
	fs := feishutest.New(t, feishutest.Options{AppID: "cli_e2e", AppSecret: feishuSecret, Listener: fsLn})
	_, agPort, _ := net.SplitHostPort(agLn.Addr().String())

	// The Hermes home, in its documented formats (CRLF .env with export,
	// quotes and a comment).
	home := "/root/.hermes"
	e.write(home+"/config.yaml", "display:\n  busy_input_mode: queue\ntelegram:\n  require_mention: true\n")
	e.write(home+"/.env", fmt.Sprintf("export TELEGRAM_BOT_TOKEN=\"%s\"\r\nTELEGRAM_ALLOWED_USERS=555 # me\r\nAPI_SERVER_ENABLED=true\r\nAPI_SERVER_KEY='%s'\r\nAPI_SERVER_PORT=%s\r\n"+
		"FEISHU_APP_ID=cli_e2e\r\nFEISHU_APP_SECRET=%s\r\nFEISHU_ALLOWED_USERS=ou_user\r\n", fake.Token, apiKey, agPort, feishuSecret))
	// Bob was let in by Hermes' pairing: he is not in the allowlist.
	e.write(home+"/platforms/pairing/telegram-approved.json", `{"777": {"user_name": "bob", "approved_at": 1760000000}}`)

	var printed strings.Builder
	migrate := func(args ...string) int {
		out, errOut, code := e.run("herald", append([]string{"migrate", "hermes", "--hermes-home", home}, args...)...)
		printed.WriteString(out + errOut)
		return code
	}
	// The package's own herald.yaml is in /etc/herald: replacing it takes
	// --force.
	if code := migrate(); code != 1 || !strings.Contains(printed.String(), "--force") {
		t.Fatalf("migrate over the packaged herald.yaml: exit %d, want 1 and a request for --force\n%s", code, printed.String())
	}
	// Then the README's commands, as an operator runs them (as root, so
	// without sudo; ~ is /root). The restart runs once the test has pointed
	// the configuration at the fakes, so that herald never tries the real
	// services.
	var steps, restart string
	for _, l := range strings.SplitAfter(strings.ReplaceAll(readmeShellBlock(t, migrateSection), "sudo ", ""), "\n") {
		if strings.HasPrefix(l, "systemctl restart ") {
			restart += l
		} else {
			steps += l
		}
	}
	if restart == "" {
		t.Fatalf("README, section %q: no systemctl restart step", migrateSection)
	}
	out, errOut, code := e.run("bash", "-ec", steps)
	printed.WriteString(out + errOut)
	if code != 0 {
		t.Fatalf("the README's migration steps: exit %d\n%s\n%s%s", code, steps, out, errOut)
	}
	if !strings.Contains(out, "HERMES SETTING") || e.sh("test -f /etc/herald/herald.yaml.bak && echo kept") != "kept\n" {
		t.Fatalf("the README's migration steps printed no mapping table or kept no herald.yaml.bak:\n%s%s", out, errOut)
	}
	if got := e.sh("stat -c '%a %n' /etc/herald/credentials/telegram-token /etc/herald/credentials/feishu-app-secret /etc/herald/credentials/agent-key"); got != "600 /etc/herald/credentials/telegram-token\n600 /etc/herald/credentials/feishu-app-secret\n600 /etc/herald/credentials/agent-key\n" {
		t.Errorf("credential files: %q, want mode 600", got)
	}
	// Bob's approval goes to herald's pairing store (the import file), not
	// to allowed_users.
	if y := e.sh("cat /etc/herald/herald.yaml"); strings.Contains(y, "777") {
		t.Errorf("the paired user is in herald.yaml:\n%s", y)
	}
	if got := e.sh("stat -c '%a' /etc/herald/pairing-import.json"); got != "644\n" {
		t.Errorf("pairing-import.json mode %q, want 644 (readable by herald's user)", got)
	}
	// Only the fake's address is added, as a test must (Hermes has no
	// Telegram API URL setting to migrate).
	e.sh(fmt.Sprintf(`sed -i -e 's|^  telegram:$|  telegram:\n    api_url: %s\n    poll_timeout: 1s|' -e 's|^  feishu:$|  feishu:\n    base_url: %s|' /etc/herald/herald.yaml`, fake.URL, fs.URL()))
	if out, errOut, code := e.run("herald", "check-config", "/etc/herald/herald.yaml"); code != 0 {
		t.Fatalf("check-config: exit %d\n%s%s", code, out, errOut)
	}
	e.startSockets()
	if out, errOut, code := e.run("bash", "-ec", restart); code != 0 {
		t.Fatalf("the README's restart step %q: exit %d\n%s%s", restart, code, out, errOut)
	}
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 30*time.Second)

	chat := telegramtest.Chat{ID: 555, Type: "private"}
	ann := telegramtest.User{ID: 555, FirstName: "Ann"}
	texts := []string{"first", "second", "third"}
	for _, text := range texts {
		fake.PushText(chat, ann, text)
	}
	fs.Push(feishutest.Event{MessageID: "om_1", Text: "on feishu"})
	fake.PushText(telegramtest.Chat{ID: 777, Type: "private"}, telegramtest.User{ID: 777, FirstName: "Bob"}, "paired")
	texts = append(texts, "paired")
	fake.Wait(t, 60*time.Second, "a reply to each message", func() bool { return len(fake.Sent()) >= len(texts) })
	if m := fs.WaitMessages(t, 1, 60*time.Second)[0]; m.ReplyTo != "om_1" || m.Text != "agent: on feishu" {
		t.Errorf("feishu shows %+v, want the answer as a reply to om_1", m)
	}
	replies := map[string]int{}
	for _, m := range fake.Sent() {
		replies[m.Text]++
	}
	calls := map[string]int{}
	for _, r := range ag.Requests() {
		calls[r.LastUser()]++
		if r.Authorization != "Bearer "+apiKey {
			t.Errorf("agent call without the migrated API server key")
		}
	}
	if calls["on feishu"] != 1 || len(fs.Messages()) != 1 {
		t.Errorf("feishu: %d agent calls, %d messages shown; want 1 and 1", calls["on feishu"], len(fs.Messages()))
	}
	for _, text := range texts {
		if replies["agent: "+text] != 1 || calls[text] != 1 {
			t.Errorf("%q: %d replies, %d agent calls; want 1 and 1", text, replies["agent: "+text], calls[text])
		}
	}
	// The import happens once: revoked, Bob stays out across a restart.
	if out, errOut, rc := e.run("herald", "pairing", "revoke", "telegram", "777"); rc != 0 {
		t.Fatalf("pairing revoke: exit %d\n%s%s", rc, out, errOut)
	}
	if out, errOut, rc := e.run("systemctl", "restart", "herald.service"); rc != 0 {
		t.Fatalf("restart: exit %d\n%s%s", rc, out, errOut)
	}
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 30*time.Second)
	if out, errOut, rc := e.run("herald", "pairing", "list", "--json"); rc != 0 || strings.Contains(out, "777") {
		t.Errorf("pairing list after revoke and restart: exit %d, want 0 and no user 777\n%s%s", rc, out, errOut)
	}
	journal := e.journalText("herald.service")
	if n := strings.Count(journal, "imported the pairing approvals of /etc/herald/pairing-import.json: 1 new"); n != 1 {
		t.Errorf("the journal shows the import %d times, want once:\n%s", n, journal)
	}
	for what, s := range map[string]string{"migrate's output": printed.String(), "the journal": journal} {
		if strings.Contains(s, fake.Token) || strings.Contains(s, apiKey) || strings.Contains(s, feishuSecret) {
			t.Errorf("a secret appears in %s", what)
		}
	}
}

// migrateSection is the README section whose shell block TestMigrateHermes
// runs.
const migrateSection = "Switching from the Hermes gateway"

// readmeShellBlock returns the first sh block of the README's section.
func readmeShellBlock(t *testing.T, section string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(pkRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\n## "+section+"\n")
	if !ok {
		t.Fatalf("README: no section %q", section)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	_, block, ok := strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("README, section %q: no sh block", section)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}
