// SPDX-License-Identifier: Apache-2.0

package discord

import (
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

func TestConfigValidate(t *testing.T) {
	valid := func() *Config {
		c := NewConfig()
		c.Token = secret.Ref{Credential: "discord-token"}
		return c
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		key  string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no token", func(c *Config) { c.Token = secret.Ref{} }, "token"},
		{"api_url not http", func(c *Config) { c.APIURL = "discord.com/api" }, "api_url"},
		{"api_url ftp", func(c *Config) { c.APIURL = "ftp://x" }, "api_url"},
		{"intents zero", func(c *Config) { c.Intents = 0 }, "intents"},
		{"intents without messages", func(c *Config) { c.Intents = IntentGuilds | IntentMessageContent }, "intents"},
		{"intents DMs only", func(c *Config) { c.Intents = IntentDirectMessages }, ""},
		{"request_timeout zero", func(c *Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{"max_message_len over 2000", func(c *Config) { c.MaxMessageLen = 2001 }, "max_message_len"},
		{"max_message_len zero", func(c *Config) { c.MaxMessageLen = 0 }, "max_message_len"},
		{"http api for the fake", func(c *Config) { c.APIURL = "http://127.0.0.1:1/api/v10" }, ""},
		{"resume_window 0: in memory only", func(c *Config) { c.ResumeWindow = 0 }, ""},
		{"resume_window 1h", func(c *Config) { c.ResumeWindow = time.Hour }, ""},
		{"resume_window negative", func(c *Config) { c.ResumeWindow = -time.Second }, "resume_window"},
		{"resume_window over 1h", func(c *Config) { c.ResumeWindow = 5 * time.Hour }, "resume_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mut(c)
			adaptertest.WantFieldError(t, c.Validate(), tc.key)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := NewConfig()
	if c.APIURL != "https://discord.com/api/v10" || c.Intents != 37377 || !c.RequireMention ||
		c.RequestTimeout.String() != "10s" || c.MaxMessageLen != 2000 || c.ResumeWindow != 5*time.Minute {
		t.Fatalf("defaults %+v", c)
	}
}

// TestConfigYAML decodes a platform section through herald's strict
// config loader, as herald.yaml would.
func TestConfigYAML(t *testing.T) {
	good := `
platforms:
  discord:
    allow_all: true
    token: {file: /etc/herald/discord.token}
    intents: 4608
    require_mention: false
    request_timeout: 5s
    max_message_len: 1900
    resume_window: 2m
`
	c, err := config.Parse("herald.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, ok := c.Platforms["discord"].Settings.(*Config)
	if !ok {
		t.Fatalf("settings are %T", c.Platforms["discord"].Settings)
	}
	if got.Token.File != "/etc/herald/discord.token" || got.Intents != 4608 || got.RequireMention ||
		got.RequestTimeout.String() != "5s" || got.MaxMessageLen != 1900 || got.APIURL != DefaultAPIURL ||
		got.ResumeWindow != 2*time.Minute {
		t.Errorf("decoded %+v", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"platforms:\n  discord:\n    allow_all: true\n    intents: 512\n", "platforms.discord.token: required"},
		{"platforms:\n  discord:\n    allow_all: true\n    token: {credential: d}\n    intent: 512\n", `platforms.discord.intent: unknown key (did you mean "intents"?)`},
		{"platforms:\n  discord:\n    allow_all: true\n    token: {file: relative}\n", "platforms.discord.token: file \"relative\" must be an absolute path"},
		{"platforms:\n  chat:\n    type: discord\n    allow_all: true\n    token: {credential: d}\n    max_message_len: 4000\n", "platforms.chat.max_message_len: 4000 is outside 1..2000"},
	} {
		_, err := config.Parse("herald.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestRegistered(t *testing.T) {
	typ, ok := adapter.Lookup("discord")
	if !ok {
		t.Fatal("discord is not registered")
	}
	c, ok := typ.NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig returns %T", typ.NewConfig())
	}
	c.Token = tokenFile(t, "abc")
	env, _, _ := adaptertest.Env(t, "dc")
	a, err := typ.New(c, env)
	if err != nil {
		t.Fatal(err)
	}
	if n := a.(*Adapter).Name; n != "dc" {
		t.Errorf("name %q", n)
	}
	if _, err := typ.New(struct{}{}, env); err == nil {
		t.Error("New accepted a foreign configuration type")
	}
}

func TestNewErrors(t *testing.T) {
	env, _, _ := adaptertest.Env(t, "discord")
	c := NewConfig()
	c.Token = secret.Ref{File: filepath.Join(t.TempDir(), "missing")}
	if _, err := New(c, env); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing token file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(p, []byte("Bot abc.def"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Token = secret.Ref{File: p}
	_, err := New(c, env)
	if err == nil || !strings.Contains(err.Error(), "bare token") || strings.Contains(err.Error(), "abc.def") {
		t.Errorf("token with prefix: %v", err)
	}
	c = NewConfig()
	if _, err := New(c, env); err == nil {
		t.Error("New without token succeeded")
	}
}
