// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// testSettings is the configuration of the "testplat" adapter type
// registered for these tests.
type testSettings struct {
	URL     string        `yaml:"url"`
	Token   secret.Ref    `yaml:"token"`
	Timeout time.Duration `yaml:"timeout"`
	Limit   int           `yaml:"limit"`
}

func (s *testSettings) Validate() error {
	var errs []error
	if s.Token.IsZero() {
		errs = append(errs, Errorf("token", "required"))
	}
	if s.Limit < 0 {
		errs = append(errs, Errorf("limit", "must not be negative"))
	}
	return errors.Join(errs...)
}

func init() {
	adapter.Register(adapter.Type{
		Name:      "testplat",
		NewConfig: func() any { return &testSettings{Timeout: time.Second} },
		New:       func(any, adapter.Env) (adapter.Adapter, error) { return nil, errors.New("not buildable") },
	})
}

func TestParseGood(t *testing.T) {
	src := `
state_dir: /var/lib/herald
listen:
  http: 127.0.0.1:9000
shutdown:
  drain_timeout: 30s
  adapter_timeout: 2s
agent:
  kind: openai
  url: http://127.0.0.1:8642
  key: {credential: agent-key}
dispatch:
  busy_policy: interrupt
  group_sessions_per_user: false
platforms:
  tp:
    type: testplat
    allowed_users: ["1", "2"]
    token: {file: /etc/herald/tp.token}
    timeout: 3s
  testplat:
    allow_all: true
    enabled: false
    token: {credential: x}
`
	c, err := Parse("herald.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shutdown.DrainTimeout != 30*time.Second || c.Shutdown.AdapterTimeout != 2*time.Second {
		t.Errorf("shutdown = %+v", c.Shutdown)
	}
	if c.Store.Path != "/var/lib/herald/herald.db" {
		t.Errorf("store path = %q", c.Store.Path)
	}
	if *c.Dispatch.GroupSessionsPerUser {
		t.Error("group_sessions_per_user: false ignored")
	}
	tp := c.Platforms["tp"]
	if tp == nil || tp.Type != "testplat" || len(tp.AllowedUsers) != 2 || !tp.IsEnabled() {
		t.Fatalf("platform tp = %+v", tp)
	}
	s := tp.Settings.(*testSettings)
	if s.Timeout != 3*time.Second || s.Token.File != "/etc/herald/tp.token" {
		t.Errorf("settings = %+v", s)
	}
	if c.Platforms["testplat"].IsEnabled() {
		t.Error("enabled: false ignored")
	}
	if tp.Unauthorized != "reply" {
		t.Errorf("unauthorized default = %q", tp.Unauthorized)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // file:line: key: message fragment
	}{
		{"unknown top-level key", "stat_dir: x\n", "herald.yaml:1:1: stat_dir: unknown key (did you mean \"state_dir\"?)"},
		{"unknown nested key", "shutdown:\n  drain_timout: 3s\n", "herald.yaml:2:3: shutdown.drain_timout: unknown key (did you mean \"drain_timeout\"?)"},
		{"bad duration", "shutdown:\n  drain_timeout: soon\n", "herald.yaml:2:18: shutdown.drain_timeout: invalid duration \"soon\""},
		{"duration without unit", "shutdown:\n  drain_timeout: 5\n", "herald.yaml:2:18: shutdown.drain_timeout: invalid duration \"5\""},
		{"negative duration", "shutdown:\n  adapter_timeout: -1s\n", "herald.yaml:2:20: shutdown.adapter_timeout: duration -1s must not be negative"},
		{"wrong type string", "unit: [a, b]\n", "herald.yaml:1:7: unit: expected a string, got a list"},
		{"wrong type int", "dispatch:\n  max_concurrent_turns: many\n", "herald.yaml:2:25: dispatch.max_concurrent_turns: expected an integer, got the string \"many\""},
		{"wrong type bool", "dispatch:\n  stream_edits: yes please\n", "herald.yaml:2:17: dispatch.stream_edits: expected true or false"},
		{"mapping expected", "listen: 8080\n", "herald.yaml:1:9: listen: expected a mapping, got the integer 8080"},
		{"invalid value", "dispatch:\n  busy_policy: random\n", "herald.yaml:2:16: dispatch.busy_policy: \"random\" is not one of queue, interrupt"},
		{"reply parts", "dispatch:\n  max_reply_parts: -1\n", "herald.yaml:2:20: dispatch.max_reply_parts: must be at least 1"},
		{"invalid listen", "listen:\n  http: nope\n", "herald.yaml:2:9: listen.http: \"nope\" is not host:port"},
		{"invalid metrics listen", "listen:\n  metrics: localhost\n", "herald.yaml:2:12: listen.metrics: \"localhost\" is not host:port"},
		{"agent url required", "agent:\n  kind: openai\n", "herald.yaml:1:1: agent.url: required for kind openai"},
		{"secret inline", "agent:\n  kind: openai\n  url: http://x\n  key: sk-123\n", "herald.yaml:4:8: agent.key: expected a mapping, got a string (6 bytes); secrets are {credential: NAME} or {file: /path}"},
		{"secret both", "agent:\n  key: {credential: a, file: /b}\n", "herald.yaml:2:8: agent.key: set either credential or file, not both"},
		{"secret relative", "agent:\n  key: {file: key.txt}\n", "herald.yaml:2:8: agent.key: file \"key.txt\" must be an absolute path"},
		{"unknown platform type", "platforms:\n  chat:\n    token: {credential: x}\n", "herald.yaml:2:3: platforms.chat.type: unknown platform type \"chat\""},
		{"unknown platform key", "platforms:\n  testplat:\n    token: {credential: x}\n    tokn: y\n", "herald.yaml:4:5: platforms.testplat.tokn: unknown key (did you mean \"token\"?)"},
		{"platform validation", "platforms:\n  testplat:\n    limit: 3\n", "herald.yaml:2:3: platforms.testplat.token: required"},
		{"platform value", "platforms:\n  testplat:\n    token: {credential: x}\n    limit: -3\n", "herald.yaml:4:12: platforms.testplat.limit: must not be negative"},
		{"allow_all with list", "platforms:\n  testplat:\n    token: {credential: x}\n    allow_all: true\n    allowed_users: [a]\n", "herald.yaml:4:16: platforms.testplat.allow_all: allow_all: true and allowed_users exclude each other"},
		{"bad platform name", "platforms:\n  Big Name:\n    type: testplat\n", "herald.yaml:2:3: platforms.Big Name: platform name must match"},
		{"duplicate key", "unit: a.service\nunit: b.service\n", "herald.yaml:2:1: unit: duplicate key"},
		{"syntax error", "listen:\n  http: [unclosed\n", "herald.yaml:1:1: YAML syntax error: did not find expected ',' or ']'"},
		{"tab indentation", "listen:\n\thttp: x\n", "herald.yaml:2:1: YAML syntax error"},
		{"not a mapping", "- a\n- b\n", "herald.yaml:1:1: expected a mapping at the top level, got a list"},
		{"two documents", "unit: a.service\n---\nunit: b.service\n", "more than one YAML document"},
		{"unit suffix", "unit: herald\n", "herald.yaml:1:7: unit: \"herald\" must name a .service unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("herald.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v is not config.Errors", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n  %v\nwant it to contain:\n  %s", err, tt.want)
			}
		})
	}
}

func TestParseReportsAllErrors(t *testing.T) {
	_, err := Parse("h.yaml", []byte("unit: x\nlog:\n  level: loud\n  format: xml\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("got %v, want 3 errors", err)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Fatalf("errors not in line order: %v", err)
		}
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	c, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.Kind != "echo" || c.Listen.HTTP != "127.0.0.1:8089" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read") {
		t.Fatalf("err = %v", err)
	}
}

func TestStateDirectoryFromSystemd(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/herald:/var/lib/other")
	t.Setenv("RUNTIME_DIRECTORY", "/run/herald")
	c, err := Parse("h.yaml", []byte("unit: herald.service\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/var/lib/herald" || c.Admin.Socket != "/run/herald/admin.sock" {
		t.Fatalf("state_dir %q admin %q", c.StateDir, c.Admin.Socket)
	}
}

func TestExampleFilesParse(t *testing.T) {
	// Every example configuration shipped in the repository must be valid;
	// the packaging example is checked by the herald package tests, which
	// have every adapter registered.
	matches, _ := filepath.Glob("testdata/*.yaml")
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		if _, err := Parse(m, b); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestMaxReplyParts(t *testing.T) {
	if got := Default().Dispatch.MaxReplyParts; got != 20 {
		t.Errorf("default dispatch.max_reply_parts = %d, want 20", got)
	}
	c, err := Parse("herald.yaml", []byte("dispatch:\n  max_reply_parts: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dispatch.MaxReplyParts != 3 {
		t.Errorf("dispatch.max_reply_parts = %d, want 3", c.Dispatch.MaxReplyParts)
	}
}

func TestHistoryRetention(t *testing.T) {
	if got := Default().Store.HistoryRetention; got != 720*time.Hour {
		t.Errorf("default store.history_retention = %v, want 720h", got)
	}
	c, err := Parse("herald.yaml", []byte("store:\n  history_retention: 168h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.HistoryRetention != 168*time.Hour {
		t.Errorf("store.history_retention = %v", c.Store.HistoryRetention)
	}
}

// A secret written inline is never repeated in the error: the error goes to
// the journal and, for a rejected reload, to /status, which every local user
// can read.
func TestInlineSecretNotEchoed(t *testing.T) {
	const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	for _, src := range []string{
		"agent:\n  kind: openai\n  url: http://x\n  key: " + token + "\n",
		"agent:\n  kind: openai\n  url: http://x\n  key: \"" + token + "\"\n",
		"agent:\n  kind: openai\n  url: http://x\n  key: 1234567890123\n",
		"platforms:\n  testplat:\n    token: " + token + "\n",
		"x: &tok " + token + "\nplatforms:\n  testplat:\n    token: *tok\n",
	} {
		_, err := Parse("herald.yaml", []byte(src))
		if err == nil {
			t.Fatalf("%q: accepted", src)
		}
		msg := err.Error()
		for _, leak := range []string{token, "1234567890123", "AAHdqT"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%q: error repeats the secret: %s", src, msg)
			}
		}
		if !strings.Contains(msg, "secrets are {credential: NAME} or {file: /path}") {
			t.Errorf("%q: error does not say how to give a secret: %s", src, msg)
		}
	}
}
