// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestConfigDefaults(t *testing.T) {
	c := NewConfig()
	if c.APIURL != "https://api.telegram.org" || c.PollTimeout != 50*time.Second || c.RequestTimeout != 10*time.Second ||
		c.ConflictWindow != 60*time.Second || !c.GroupMentionOnly || c.MaxMessageLen != 4096 ||
		!reflect.DeepEqual(c.AllowedUpdates, []string{"message", "callback_query"}) {
		t.Fatalf("defaults %+v", c)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("defaults without token: %v, want token required", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		key  string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no token", func(c *Config) { c.Token = secret.Ref{} }, "token"},
		{"api_url scheme", func(c *Config) { c.APIURL = "ftp://x" }, "api_url"},
		{"api_url query", func(c *Config) { c.APIURL = "https://x/?a=1" }, "api_url"},
		{"api_url user", func(c *Config) { c.APIURL = "https://u:p@x" }, "api_url"},
		{"api_url trailing slash ok", func(c *Config) { c.APIURL = "https://x/" }, ""},
		{"poll 0", func(c *Config) { c.PollTimeout = 0 }, "poll_timeout"},
		{"poll fraction", func(c *Config) { c.PollTimeout = 1500 * time.Millisecond }, "poll_timeout"},
		{"poll too long", func(c *Config) { c.PollTimeout = time.Hour }, "poll_timeout"},
		{"request 0", func(c *Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{"window 0 ok", func(c *Config) { c.ConflictWindow = 0 }, ""},
		{"len 0", func(c *Config) { c.MaxMessageLen = 0 }, "max_message_len"},
		{"len 5000", func(c *Config) { c.MaxMessageLen = 5000 }, "max_message_len"},
		{"no message updates", func(c *Config) { c.AllowedUpdates = []string{"edited_message"} }, "allowed_updates"},
		{"empty update type", func(c *Config) { c.AllowedUpdates = []string{"message", " "} }, "allowed_updates[1]"},
		{"duplicate update type", func(c *Config) { c.AllowedUpdates = []string{"message", "message"} }, "allowed_updates[1]"},
		{"interrupted_send at_most_once", func(c *Config) { c.InterruptedSend = AtMostOnce }, ""},
		{"interrupted_send unknown", func(c *Config) { c.InterruptedSend = "twice" }, "interrupted_send"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			c.Token = secret.Ref{Credential: "telegram-token"}
			tc.mod(c)
			adaptertest.WantFieldError(t, c.Validate(), tc.key)
		})
	}
}

func TestLoadThroughHeraldConfig(t *testing.T) {
	yml := "platforms:\n  bot:\n    type: telegram\n    allow_all: true\n    token: {file: /etc/herald/tg.token}\n    poll_timeout: 30s\n    group_mention_only: false\n    allowed_updates: [message, edited_message]\n"
	c, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.Platforms["bot"].Settings.(*Config)
	if !ok {
		t.Fatalf("settings %T", c.Platforms["bot"].Settings)
	}
	if tc.PollTimeout != 30*time.Second || tc.GroupMentionOnly || tc.RequestTimeout != DefaultRequestTimeout ||
		len(tc.AllowedUpdates) != 2 || tc.Token.File != "/etc/herald/tg.token" {
		t.Fatalf("decoded %+v", tc)
	}
	_, err = config.Parse("test.yaml", []byte("platforms:\n  telegram:\n    allow_all: true\n    pol_timeout: 3s\n"))
	if err == nil || !strings.Contains(err.Error(), "platforms.telegram.token") || !strings.Contains(err.Error(), `did you mean "poll_timeout"`) {
		t.Fatalf("errors %v", err)
	}
}

func TestRegistered(t *testing.T) {
	typ, ok := adapter.Lookup("telegram")
	if !ok {
		t.Fatal("telegram not registered")
	}
	conf, ok := typ.NewConfig().(*Config)
	if !ok || conf.PollTimeout != DefaultPollTimeout {
		t.Fatalf("NewConfig %T %+v", conf, conf)
	}
	env, _, _ := adaptertest.Env(t, "tg")
	if _, err := typ.New(struct{}{}, env); err == nil {
		t.Error("factory accepted a foreign configuration")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tok")
	if err := os.WriteFile(path, []byte("123:abc-DEF_9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf.Token = secret.Ref{File: path}
	a, err := typ.New(conf, env)
	if err != nil {
		t.Fatal(err)
	}
	if n := a.(*Adapter).Name; n != "tg" {
		t.Errorf("name %q", n)
	}
}

func TestNewRefusesBadTokens(t *testing.T) {
	env, _, _ := adaptertest.Env(t, "tg")
	dir := t.TempDir()
	for _, tok := range []string{"nocolon", ":abc", "12:", "12:ab/c", "12:ab c", "1a:bc", "12:ab?c"} {
		path := filepath.Join(dir, "tok")
		if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		c := NewConfig()
		c.Token = secret.Ref{File: path}
		_, err := New(c, env)
		if err == nil {
			t.Errorf("token %q accepted", tok)
			continue
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("error %q quotes the token", err)
		}
	}
	c := NewConfig()
	c.Token = secret.Ref{File: filepath.Join(dir, "missing")}
	if _, err := New(c, env); err == nil {
		t.Error("missing token file accepted")
	}
}

var fence = regexp.MustCompile("(?s)```(\\w*)\n(.*?)```")

// section returns the text of "## title" up to the next "## ".
func section(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", title)
	}
	rest := doc[i+len(title)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestReadme keeps README.md in step with the code: required sections,
// every configuration key with its default, every rejection reason, the
// alarm text, and YAML examples that load.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []string{"Name", "Description", "Wire protocol", "Configuration", "Limits", "Failure handling", "Metrics", "Examples"} {
		section(t, doc, s)
	}
	conf := section(t, doc, "Configuration")
	for _, key := range config.Keys(reflect.TypeOf(Config{})) {
		if !strings.Contains(conf, "| `"+key+"` |") {
			t.Errorf("configuration key %q is not in the Configuration table", key)
		}
	}
	d := NewConfig()
	for key, def := range map[string]string{
		"api_url": d.APIURL, "poll_timeout": "50s", "request_timeout": "10s", "conflict_window": "60s",
		"group_mention_only": "true", "max_message_len": "4096", "allowed_updates": "[message, callback_query]",
		"interrupted_send": d.InterruptedSend,
	} {
		if !strings.Contains(conf, "| `"+key+"` | `"+def+"` |") {
			t.Errorf("default of %q is not documented as %q", key, def)
		}
	}
	metrics := section(t, doc, "Metrics")
	for _, r := range []string{reasonUnsupported, reasonFromBot, reasonNotAddressed, reasonMalformed, reasonInvalid} {
		if !strings.Contains(metrics, "| `"+r+"` |") {
			t.Errorf("rejection reason %q is not in the Metrics table", r)
		}
	}
	if !strings.Contains(section(t, doc, "Failure handling"), ConflictAlarm) {
		t.Error("the 409 alarm text is not documented")
	}
	examples := 0
	for _, m := range fence.FindAllStringSubmatch(section(t, doc, "Examples"), -1) {
		if m[1] != "yaml" {
			continue
		}
		examples++
		if _, err := config.Parse("README.md", []byte(m[2])); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, m[2])
		}
	}
	if examples < 2 {
		t.Errorf("%d YAML examples, want 2", examples)
	}
}
