// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestRegistered(t *testing.T) {
	typ, ok := adapter.Lookup("slack")
	if !ok {
		t.Fatal("slack is not registered")
	}
	c, ok := typ.NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig returns %T", typ.NewConfig())
	}
	if *c != *NewConfig() {
		t.Fatalf("registered defaults %+v differ from NewConfig", c)
	}
}

func TestDefaults(t *testing.T) {
	c := NewConfig()
	want := Config{APIURL: "https://slack.com/api", PingInterval: 30 * time.Second, ConflictWindow: time.Minute, ReplyInThread: true,
		AdapterLimits: config.AdapterLimits{RequestTimeout: 10 * time.Second, MaxMessageLen: 39000}}
	if *c != want {
		t.Fatalf("NewConfig() = %+v, want %+v", *c, want)
	}
}

func TestValidate(t *testing.T) {
	ref := secret.Ref{Credential: "x"}
	tests := []struct {
		name string
		mod  func(*Config)
		keys []string // keys with errors
	}{
		{"valid", func(*Config) {}, nil},
		{"tokens missing", func(c *Config) { c.AppToken, c.BotToken = secret.Ref{}, secret.Ref{} }, []string{"app_token", "bot_token"}},
		{"plain http to a remote host", func(c *Config) { c.APIURL = "http://slack.example/api" }, []string{"api_url"}},
		{"plain http to loopback", func(c *Config) { c.APIURL = "http://127.0.0.1:9/api" }, nil},
		{"plain http to localhost", func(c *Config) { c.APIURL = "http://localhost:9/api" }, nil},
		{"not a URL", func(c *Config) { c.APIURL = "slack.com" }, []string{"api_url"}},
		{"zero intervals", func(c *Config) { c.PingInterval, c.RequestTimeout = 0, 0 }, []string{"ping_interval", "request_timeout"}},
		{"huge intervals", func(c *Config) { c.PingInterval, c.RequestTimeout = time.Hour, time.Hour }, []string{"ping_interval", "request_timeout"}},
		{"zero conflict window", func(c *Config) { c.ConflictWindow = 0 }, []string{"conflict_window"}},
		{"conflict window over an hour", func(c *Config) { c.ConflictWindow = 2 * time.Hour }, []string{"conflict_window"}},
		{"message length over Slack's limit", func(c *Config) { c.MaxMessageLen = 40001 }, []string{"max_message_len"}},
		{"message length zero", func(c *Config) { c.MaxMessageLen = 0 }, []string{"max_message_len"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig()
			c.AppToken, c.BotToken = ref, ref
			tt.mod(c)
			err := c.Validate()
			var got []string
			for _, e := range flatten(err) {
				var fe *config.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a FieldError", e)
				}
				got = append(got, fe.Key)
			}
			if strings.Join(got, ",") != strings.Join(tt.keys, ",") {
				t.Fatalf("errors on %v (%v), want %v", got, err, tt.keys)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// The section decodes through herald's strict loader.
func TestConfigYAML(t *testing.T) {
	yaml := `
platforms:
  slack:
    allow_all: true
    app_token: {credential: slack-app}
    bot_token: {file: /etc/herald/slack-bot}
    ping_interval: 20s
    request_timeout: 5s
    conflict_window: 2m
    max_message_len: 3000
    reply_in_thread: false
`
	c, err := config.Parse("herald.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := c.Platforms["slack"].Settings.(*Config)
	want := Config{
		AppToken: secret.Ref{Credential: "slack-app"}, BotToken: secret.Ref{File: "/etc/herald/slack-bot"},
		APIURL: DefaultAPIURL, PingInterval: 20 * time.Second, ConflictWindow: 2 * time.Minute,
		AdapterLimits: config.AdapterLimits{RequestTimeout: 5 * time.Second, MaxMessageLen: 3000},
	}
	if *got != want {
		t.Fatalf("decoded %+v, want %+v", *got, want)
	}

	_, err = config.Parse("herald.yaml", []byte("platforms:\n  slack:\n    app_token: {credential: a}\n    bot_tokn: {credential: b}\n"))
	if err == nil || !strings.Contains(err.Error(), "platforms.slack.bot_tokn: unknown key") || !strings.Contains(err.Error(), "platforms.slack.bot_token: required") {
		t.Fatalf("Parse error = %v, want the misspelt key and the missing bot_token", err)
	}
}

func TestNewChecksTokens(t *testing.T) {
	dir := t.TempDir()
	file := func(name, v string) secret.Ref {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return secret.Ref{File: p}
	}
	app, bot := file("app", "xapp-1-A-1"), file("bot", "xoxb-1")
	tests := []struct {
		name     string
		app, bot secret.Ref
		want     string // substring of the error; "" = success
	}{
		{"ok", app, bot, ""},
		{"bot token as app token", bot, bot, "app_token: not an app-level token"},
		{"tokens swapped", bot, app, "app_token: not an app-level token"},
		{"app token as bot token", app, app, "bot_token: this is an app-level token"},
		{"user token as bot token", app, file("user", "xoxp-1"), ""},
		{"missing file", app, secret.Ref{File: filepath.Join(dir, "nope")}, "bot_token"},
		{"empty file", file("empty", "\n"), bot, "app_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig()
			c.AppToken, c.BotToken = tt.app, tt.bot
			env, _, _ := adaptertest.Env(t, "slack")
			a, err := New(c, env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if a.Name != "slack" {
					t.Fatalf("name = %q", a.Name)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "xoxb-1") || strings.Contains(err.Error(), "xapp-1-A-1") {
				t.Fatalf("error %q contains a token", err)
			}
		})
	}
	if _, err := adapter.Define(TypeName, NewConfig, New).New(struct{}{}, adapter.Env{}); err == nil {
		t.Fatal("New accepted a foreign configuration type")
	}
	c := NewConfig()
	c.AppToken, c.BotToken = app, bot
	c.PingInterval = 0
	if _, err := New(c, adapter.Env{}); err == nil || !strings.Contains(err.Error(), "ping_interval") {
		t.Fatalf("New with an invalid configuration: %v", err)
	}
}
