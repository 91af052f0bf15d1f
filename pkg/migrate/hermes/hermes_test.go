// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/adapter/discord"
	"github.com/heraldgw/herald/pkg/adapter/feishu"
	"github.com/heraldgw/herald/pkg/adapter/slack"
	"github.com/heraldgw/herald/pkg/adapter/telegram"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/doctor"
	"github.com/heraldgw/herald/pkg/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Every secret in the fixtures contains this marker; nothing printed or
// written outside the credentials directory may.
const secretMarker = "FIXTURE"

// fixtures are the Hermes homes under testdata/: <name>/home, and
// <name>/profile holding a profile name when the fixture migrates one.
func fixtures(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/*/home")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

func fixtureProfile(name string) string {
	b, _ := os.ReadFile(filepath.Join("testdata", name, "profile"))
	return strings.TrimSpace(string(b))
}

func loadFixture(t *testing.T, name string) *Source {
	t.Helper()
	src, err := Load(filepath.Join("testdata", name, "home"), fixtureProfile(name))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return src
}

// report is what a run prints besides the YAML: the table and the advice.
func report(p *Plan) string {
	var buf bytes.Buffer
	buf.WriteString(p.Table())
	printAdvice(&buf, p)
	return buf.String()
}

// normalize replaces the fixture's absolute path, so golden files do not
// depend on where the repository is.
func normalize(t *testing.T, name, s string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name, "home"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(s, abs, "HERMES_HOME")
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, Diff(string(want), got))
	}
}

func TestGolden(t *testing.T) {
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			p := Build(loadFixture(t, name), "/etc/herald/credentials")
			golden(t, filepath.Join("testdata", name, "herald.yaml.golden"), normalize(t, name, string(p.YAML)))
			golden(t, filepath.Join("testdata", name, "table.golden"), normalize(t, name, report(p)))
		})
	}
}

// TestGeneratedConfigLoads writes each fixture's migration and loads it
// with herald's own loader and check-config: every secret it names is in
// the credentials directory.
func TestGeneratedConfigLoads(t *testing.T) {
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			var stdout bytes.Buffer
			if err := Run(Options{HermesHome: filepath.Join("testdata", name, "home"), Profile: fixtureProfile(name), Out: out, Stdout: &stdout}); err != nil {
				t.Fatalf("Run: %v\n%s", err, stdout.String())
			}
			cfgPath := filepath.Join(out, "herald.yaml")
			if _, err := config.Load(cfgPath); err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			t.Setenv("CREDENTIALS_DIRECTORY", "")
			var check bytes.Buffer
			if err := doctor.CheckConfig(cfgPath, filepath.Join(out, "credentials"), &check); err != nil {
				t.Fatalf("CheckConfig: %v", err)
			}
		})
	}
}

// TestFullMapping checks the values herald reads back from the full
// fixture, and the secrets written.
func TestFullMapping(t *testing.T) {
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := Run(Options{HermesHome: "testdata/full/home", Out: out, Stdout: &stdout}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(filepath.Join(out, "herald.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.Kind != "hermes" || c.Agent.URL != "http://127.0.0.1:8650" || c.Agent.Key.Credential != "agent-key" {
		t.Errorf("agent = %+v", c.Agent)
	}
	if c.Dispatch.BusyPolicy != "queue" || *c.Dispatch.GroupSessionsPerUser || c.Dispatch.MaxConcurrentTurns != 8 || !c.Dispatch.StreamEdits || c.Dispatch.StreamEditInterval.Milliseconds() != 800 {
		t.Errorf("dispatch = %+v", c.Dispatch)
	}
	tg := c.Platforms["telegram"]
	if want := []string{"111111111", "222222222"}; !reflect.DeepEqual(tg.AllowedUsers, want) {
		t.Errorf("telegram allowed_users = %q, want %q (the .env list, without the users approved by pairing)", tg.AllowedUsers, want)
	}
	// The users approved by pairing (both pairing directories) go to the
	// store through the import file, which herald's store accepts once.
	imp := filepath.Join(out, store.PairingImportFile)
	if fi, err := os.Stat(imp); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s: %v %v", imp, fi, err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, fresh, err := st.ImportPairingFile(context.Background(), imp); err != nil || !fresh || n != 2 {
		t.Fatalf("import %s: %d %v %v", imp, n, fresh, err)
	}
	_, users, err := st.Pairings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Platform+"/"+u.UserID)
	}
	sort.Strings(got)
	if want := []string{"telegram/555555555", "telegram/666666666"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paired after import = %q, want %q", got, want)
	}
	if tg.Unauthorized != "ignore" || !tg.Settings.(*telegram.Config).GroupMentionOnly || tg.Settings.(*telegram.Config).Token.Credential != "telegram-token" {
		t.Errorf("telegram = %+v %+v", tg, tg.Settings)
	}
	if d := c.Platforms["discord"].Settings.(*discord.Config); d.RequireMention || d.Token.Credential != "discord-token" {
		t.Errorf("discord = %+v", d)
	}
	sl := c.Platforms["slack"]
	if s := sl.Settings.(*slack.Config); !sl.AllowAll || s.ReplyInThread || s.AppToken.Credential != "slack-app-token" || s.BotToken.Credential != "slack-bot-token" {
		t.Errorf("slack = %+v %+v", sl, s)
	}
	if f := c.Platforms["feishu"].Settings.(*feishu.Config); f.AppID != "cli_fixture0000000001" || f.Domain != "lark" || f.AppSecret.Credential != "feishu-app-secret" {
		t.Errorf("feishu = %+v", f)
	}
	if _, ok := c.Platforms["matrix"]; ok {
		t.Error("matrix has no herald adapter but got a section")
	}
	want := map[string]string{
		"telegram-token":    "123456789:FIXTURE-telegram-token-AAAAAAAA",
		"discord-token":     "FIXTURE.discord.token#not-a-comment",
		"slack-bot-token":   "xoxb-FIXTURE-slack-bot-token",
		"slack-app-token":   "xapp-FIXTURE-slack-app-token",
		"feishu-app-secret": `FIXTURE feishu "secret" value`,
		"agent-key":         "FIXTURE-api-server-key-0123456789",
	}
	credDir := filepath.Join(out, "credentials")
	entries, err := os.ReadDir(credDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("credentials directory holds %d files, want %d", len(entries), len(want))
	}
	if fi, _ := os.Stat(credDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory mode %v, want 0700", fi.Mode().Perm())
	}
	for n, v := range want {
		p := filepath.Join(credDir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if string(b) != v+"\n" {
			t.Errorf("%s holds the wrong value", n)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", n, fi.Mode().Perm())
		}
	}
}

// TestNoSecretPrinted runs every fixture, dry and real, and a second run
// against changed secrets, and looks for the secrets in everything printed
// and in the YAML.
func TestNoSecretPrinted(t *testing.T) {
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			home := filepath.Join("testdata", name, "home")
			out := t.TempDir()
			var all bytes.Buffer
			for _, o := range []Options{{DryRun: true}, {}, {DryRun: true}} {
				o.HermesHome, o.Profile, o.Out, o.Stdout = home, fixtureProfile(name), out, &all
				if err := Run(o); err != nil {
					t.Fatalf("Run: %v", err)
				}
			}
			// Change every secret file: the refusal names them, never
			// their values.
			creds, _ := filepath.Glob(filepath.Join(out, "credentials", "*"))
			var generated []string
			for _, c := range creds {
				b, _ := os.ReadFile(c)
				generated = append(generated, strings.TrimSpace(string(b)))
				if err := os.WriteFile(c, []byte("FIXTURE-changed\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Run(Options{HermesHome: home, Profile: fixtureProfile(name), Out: out, Stdout: &all})
			var changedSecrets int
			for _, c := range creds {
				if b, _ := os.ReadFile(c); string(b) == "FIXTURE-changed\n" {
					changedSecrets++
				}
			}
			if err != nil {
				all.WriteString(err.Error())
			}
			yml, _ := os.ReadFile(filepath.Join(out, "herald.yaml"))
			for what, s := range map[string]string{"output": all.String(), "herald.yaml": string(yml)} {
				if i := strings.Index(s, secretMarker); i >= 0 {
					t.Errorf("a secret appears in the %s: ...%s...", what, s[max(0, i-40):min(len(s), i+40)])
				}
				for _, g := range generated {
					if g != "" && !strings.Contains(g, secretMarker) && strings.Contains(s, g) {
						t.Errorf("a generated key appears in the %s", what)
					}
				}
			}
			if changedSecrets != len(creds) {
				t.Errorf("a refused run overwrote %d changed secret files", len(creds)-changedSecrets)
			}
		})
	}
}

// TestSecondRun: an unchanged second run writes nothing new; an edited
// herald.yaml gets a diff and a refusal; --force replaces it and keeps a
// backup.
func TestSecondRun(t *testing.T) {
	out := t.TempDir()
	home := "testdata/full/home"
	run := func(force bool) (string, error) {
		var buf bytes.Buffer
		err := Run(Options{HermesHome: home, Out: out, Force: force, Stdout: &buf})
		return buf.String(), err
	}
	if _, err := run(false); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(out, "herald.yaml")
	first, _ := os.ReadFile(cfgPath)
	if s, err := run(false); err != nil || !strings.Contains(s, "already matches") {
		t.Fatalf("unchanged second run: %v\n%s", err, s)
	}
	edited := strings.Replace(string(first), "busy_policy: queue", "busy_policy: interrupt", 1)
	if edited == string(first) {
		t.Fatal("fixture YAML has no busy_policy: queue to edit")
	}
	if err := os.WriteFile(cfgPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := run(false)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("run over an edited file: err = %v, want ErrChanged", err)
	}
	if !strings.Contains(s, "-  busy_policy: interrupt") || !strings.Contains(s, "+  busy_policy: queue") {
		t.Errorf("no diff of the edit in:\n%s", s)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != edited {
		t.Error("a refused run changed herald.yaml")
	}
	if _, err := run(true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if b, _ := os.ReadFile(cfgPath); !bytes.Equal(b, first) {
		t.Error("--force did not write the migration")
	}
	if b, _ := os.ReadFile(cfgPath + ".bak"); string(b) != edited {
		t.Error("--force did not keep the edited file as herald.yaml.bak")
	}
}

// TestGeneratedKeyKept: the agent key generated for an API server without
// one survives a second run (the user copied it into Hermes' .env).
func TestGeneratedKeyKept(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	if err := Run(Options{HermesHome: "testdata/minimal/home", Out: out, Stdout: &buf}); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(out, "credentials", "agent-key"))
	if err != nil || len(strings.TrimSpace(string(first))) < minAPIKey {
		t.Fatalf("agent-key: %v, %d bytes", err, len(first))
	}
	if err := Run(Options{HermesHome: "testdata/minimal/home", Out: out, Stdout: &buf}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "credentials", "agent-key")); !bytes.Equal(b, first) {
		t.Error("the second run replaced the generated key")
	}
	if !strings.Contains(buf.String(), "kept "+filepath.Join(out, "credentials", "agent-key")) {
		t.Errorf("second run did not keep the generated key:\n%s", buf.String())
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	out := filepath.Join(t.TempDir(), "herald")
	var buf bytes.Buffer
	if err := Run(Options{HermesHome: "testdata/full/home", Out: out, DryRun: true, Stdout: &buf}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("dry run created %s (%v)", out, err)
	}
	for _, want := range []string{"HERMES SETTING", "platforms:", "credentials/telegram-token  from TELEGRAM_BOT_TOKEN"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
}

// TestCRLF: the same .env with Windows line ends gives the same plan.
func TestCRLF(t *testing.T) {
	home := t.TempDir()
	for _, f := range []string{"config.yaml", ".env"} {
		b, err := os.ReadFile(filepath.Join("testdata/full/home", f))
		if err != nil {
			t.Fatal(err)
		}
		crlf := strings.ReplaceAll(string(b), "\n", "\r\n")
		if err := os.WriteFile(filepath.Join(home, f), []byte(crlf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := Build(loadFixture(t, "full"), "/c")
	src, err := Load(home, "")
	if err != nil {
		t.Fatal(err)
	}
	src.Approved = a.Source.Approved // the pairing files are not copied
	b := Build(src, "/c")
	if !reflect.DeepEqual(a.Secrets, b.Secrets) || !reflect.DeepEqual(a.Rows, b.Rows) {
		t.Errorf("CRLF changed the plan:\n%s", Diff(a.Table(), b.Table()))
	}
}

func TestMissingHome(t *testing.T) {
	_, err := Load(t.TempDir(), "")
	if err == nil || !strings.Contains(err.Error(), "is it a Hermes home") {
		t.Errorf("err = %v", err)
	}
	if _, err := Load("testdata/full/home", "../x"); err == nil {
		t.Error("a profile name with a slash was accepted")
	}
	// A config.yaml that is not a mapping: the error must not quote it.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("FIXTURE-pasted-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(home, ""); err == nil || strings.Contains(err.Error(), secretMarker) {
		t.Errorf("config.yaml holding a scalar: err = %v", err)
	}
}

func TestParseDotenv(t *testing.T) {
	in := "\ufeff# comment\n" +
		"A=plain\n" +
		"export B=exported\n" +
		"C = spaced # comment\n" +
		"D=\"double # not a comment\\nnext\"\n" +
		"E='single \\' quote # kept'\n" +
		"F=value#hash\n" +
		"G=\"multi\nline\"\n" +
		"H=\n" +
		"not an assignment\n" +
		"I='unterminated SECRETVALUE\n" +
		"A=later wins\r\n" +
		"J=\"after\" # comment\n"
	vars, warns := ParseDotenv([]byte(in))
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.Value
	}
	want := map[string]string{
		"A": "later wins", "B": "exported", "C": "spaced", "D": "double # not a comment\nnext",
		"E": "single ' quote # kept", "F": "value#hash", "G": "multi\nline", "H": "", "J": "after",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if len(warns) != 2 {
		t.Errorf("warnings = %q, want 2 (line 11, line 12)", warns)
	}
	for _, w := range warns {
		if strings.Contains(w, "SECRETVALUE") {
			t.Errorf("a warning shows a value: %s", w)
		}
	}
}

func TestDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\n"
	b := "a\nb\nC\nd\ne\nf\ng\nh\ni\n"
	got := Diff(a, b)
	want := "@@ -1 +1 @@\n a\n b\n-c\n+C\n d\n e\n@@ -7 +7 @@\n g\n h\n+i\n"
	if got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
	if Diff(a, a) != "" {
		t.Error("Diff of equal texts is not empty")
	}
}

// TestPairingBecomesDMPolicy: Hermes' pairing behaviour for unknown users
// becomes herald's pairing mode, which herald's own loader accepts.
func TestPairingBecomesDMPolicy(t *testing.T) {
	home := t.TempDir()
	files := map[string]string{
		"config.yaml": "unauthorized_dm_behavior: pair\n",
		".env":        "TELEGRAM_BOT_TOKEN=123:abc\nTELEGRAM_ALLOWED_USERS=555\nAPI_SERVER_ENABLED=true\nAPI_SERVER_KEY=k\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	var stdout bytes.Buffer
	if err := Run(Options{HermesHome: home, Out: out, Stdout: &stdout}); err != nil {
		t.Fatalf("Run: %v\n%s", err, stdout.String())
	}
	cfg, err := config.Load(filepath.Join(out, "herald.yaml"))
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	p := cfg.Platforms["telegram"]
	if p == nil || p.Policy() != "pairing" {
		t.Fatalf("telegram platform %+v, want dm_policy pairing", p)
	}
}
