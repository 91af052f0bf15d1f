// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestNewConfigDefaults(t *testing.T) {
	c := webhook.NewConfig()
	if c.Signature != "any" || c.MaxBodyBytes != 1<<20 || c.RequestTimeout != 10*time.Second || c.MaxMessageLen != 4000 {
		t.Fatalf("NewConfig() = %+v", c)
	}
	// Without a secret the defaults alone are not valid: signatures are
	// required unless waived explicitly.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("NewConfig().Validate() got %v, want an error about secret", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ref := secret.Ref{File: "/run/secret"}
	tests := []struct {
		name    string
		mod     func(*webhook.Config)
		wantKey string // "" for valid
	}{
		{name: "secret", mod: func(c *webhook.Config) { c.Secret = ref }},
		{name: "insecure", mod: func(c *webhook.Config) { c.InsecureNoSignature = true }},
		{name: "demo", mod: func(c *webhook.Config) { c.DemoDefaults() }},
		{name: "all keys", mod: func(c *webhook.Config) {
			c.Secret, c.Path, c.Signature = ref, "/in/ci-builds", "standard"
			c.ReplyURL, c.ReplyURLAllow = "https://chat.example.com/herald", []string{"http://127.0.0.1:9000/", "https://b.example.com/x?y=1"}
			c.OutboundSecret, c.MaxBodyBytes, c.RequestTimeout, c.MaxMessageLen = ref, 4096, time.Second, 100
		}},
		{name: "no secret", mod: func(c *webhook.Config) {}, wantKey: "secret"},
		{name: "secret and insecure", mod: func(c *webhook.Config) { c.Secret, c.InsecureNoSignature = ref, true }, wantKey: "insecure_no_signature"},
		{name: "signature", mod: func(c *webhook.Config) { c.Secret, c.Signature = ref, "sha1" }, wantKey: "signature"},
		{name: "signature empty", mod: func(c *webhook.Config) { c.Secret, c.Signature = ref, "" }, wantKey: "signature"},
		{name: "path relative", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "hooks/x" }, wantKey: "path"},
		{name: "path trailing slash", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "/hooks/" }, wantKey: "path"},
		{name: "path root", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "/" }, wantKey: "path"},
		{name: "path wildcard", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "/hooks/{name}" }, wantKey: "path"},
		{name: "path dots", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "/hooks/../admin" }, wantKey: "path"},
		{name: "path space", mod: func(c *webhook.Config) { c.Secret, c.Path = ref, "/hooks/a b" }, wantKey: "path"},
		{name: "max_body_bytes 0", mod: func(c *webhook.Config) { c.Secret, c.MaxBodyBytes = ref, 0 }, wantKey: "max_body_bytes"},
		{name: "max_body_bytes huge", mod: func(c *webhook.Config) { c.Secret, c.MaxBodyBytes = ref, 1<<30 }, wantKey: "max_body_bytes"},
		{name: "request_timeout 0", mod: func(c *webhook.Config) { c.Secret, c.RequestTimeout = ref, 0 }, wantKey: "request_timeout"},
		{name: "reply_url scheme", mod: func(c *webhook.Config) { c.Secret, c.ReplyURL = ref, "ftp://example.com/" }, wantKey: "reply_url"},
		{name: "reply_url userinfo", mod: func(c *webhook.Config) { c.Secret, c.ReplyURL = ref, "https://u:p@example.com/" }, wantKey: "reply_url"},
		{name: "reply_url no host", mod: func(c *webhook.Config) { c.Secret, c.ReplyURL = ref, "https:///x" }, wantKey: "reply_url"},
		{name: "reply_url_allow", mod: func(c *webhook.Config) {
			c.Secret, c.ReplyURLAllow = ref, []string{"https://ok.example.com/", "example.com"}
		}, wantKey: "reply_url_allow[1]"},
		{name: "max_message_len", mod: func(c *webhook.Config) { c.Secret, c.MaxMessageLen = ref, 0 }, wantKey: "max_message_len"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webhook.NewConfig()
			tt.mod(c)
			adaptertest.WantFieldError(t, c.Validate(), tt.wantKey)
		})
	}
}

// The configuration is decoded by herald's strict loader through the
// registered type: keys, types and Validate errors surface with the
// platform's path.
func TestConfigThroughLoader(t *testing.T) {
	good := `
platforms:
  ci:
    type: webhook
    allow_all: true
    path: /in/ci
    secret: {credential: ci-hook}
    signature: github
    max_body_bytes: 65536
    request_timeout: 3s
    reply_url: https://ci.example.com/herald/replies
    reply_url_allow: ["https://ci.example.com/other/"]
    outbound_secret: {file: /etc/herald/ci-out}
    max_message_len: 2000
`
	c, err := config.Parse("herald.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, ok := c.Platforms["ci"].Settings.(*webhook.Config)
	if !ok {
		t.Fatalf("settings are %T", c.Platforms["ci"].Settings)
	}
	want := webhook.Config{
		Path: "/in/ci", Secret: secret.Ref{Credential: "ci-hook"}, Signature: "github", MaxBodyBytes: 65536,
		ReplyURL:      "https://ci.example.com/herald/replies",
		ReplyURLAllow: []string{"https://ci.example.com/other/"}, OutboundSecret: secret.Ref{File: "/etc/herald/ci-out"},
		AdapterLimits: config.AdapterLimits{RequestTimeout: 3 * time.Second, MaxMessageLen: 2000},
	}
	if got.Path != want.Path || got.Secret != want.Secret || got.Signature != want.Signature ||
		got.MaxBodyBytes != want.MaxBodyBytes || got.RequestTimeout != want.RequestTimeout ||
		got.ReplyURL != want.ReplyURL || strings.Join(got.ReplyURLAllow, ",") != strings.Join(want.ReplyURLAllow, ",") ||
		got.OutboundSecret != want.OutboundSecret || got.MaxMessageLen != want.MaxMessageLen {
		t.Fatalf("decoded %+v\nwant    %+v", *got, want)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"platforms:\n  ci:\n    type: webhook\n", "platforms.ci.secret: required"},
		{"platforms:\n  ci:\n    type: webhook\n    insecure_no_signature: true\n    sigature: github\n", `platforms.ci.sigature: unknown key (did you mean "signature"?)`},
		{"platforms:\n  ci:\n    type: webhook\n    insecure_no_signature: true\n    max_body_bytes: lots\n", "platforms.ci.max_body_bytes: expected an integer"},
		{"platforms:\n  ci:\n    type: webhook\n    secret: {file: relative}\n", "platforms.ci.secret: file \"relative\" must be an absolute path"},
	} {
		_, err := config.Parse("herald.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) got %v, want an error containing %q", tt.yaml, err, tt.want)
		}
	}
}

// config.Default (herald run without a file) builds the webhook platform
// with DemoDefaults; that configuration must build without credentials.
func TestDemoDefaultsBuild(t *testing.T) {
	c := config.Default()
	p, ok := c.Platforms["webhook"]
	if !ok {
		t.Fatal("config.Default() has no webhook platform although the type is registered")
	}
	wc := p.Settings.(*webhook.Config)
	if !wc.InsecureNoSignature || wc.ReplyURL != "" || !wc.Secret.IsZero() {
		t.Fatalf("demo settings %+v", wc)
	}
	typ, _ := adapter.Lookup("webhook")
	env, _, _ := adaptertest.Env(t, "webhook")
	a, err := typ.New(wc, env)
	if err != nil {
		t.Fatalf("New(demo) = %v", err)
	}
	if got := a.(adapter.RouteProvider).Routes()[0].Pattern; got != "POST /hooks/webhook" {
		t.Fatalf("demo route %q, want POST /hooks/webhook", got)
	}
	if _, err := typ.New(struct{}{}, env); err == nil {
		t.Fatal("New(wrong config type) succeeded")
	}
}

func TestNewSecrets(t *testing.T) {
	env, _, _ := adaptertest.Env(t, "hooks")
	for _, tt := range []struct {
		name string
		mod  func(*webhook.Config)
		want string
	}{
		{"missing secret file", func(c *webhook.Config) { c.Secret = secret.Ref{File: "/nonexistent/herald-secret"} }, "webhook: secret: file /nonexistent/herald-secret"},
		{"bad whsec", func(c *webhook.Config) { c.Secret = secretFile(t, "whsec_not*base64") }, "not valid base64"},
		{"bad whsec ok for github", func(c *webhook.Config) { c.Secret, c.Signature = secretFile(t, "whsec_not*base64"), "github" }, ""},
		{"bad outbound", func(c *webhook.Config) { c.InsecureNoSignature, c.OutboundSecret = true, secretFile(t, "whsec_***") }, "outbound_secret"},
		{"credential without systemd", func(c *webhook.Config) { c.Secret = secret.Ref{Credential: "x"} }, "CREDENTIALS_DIRECTORY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", "")
			c := webhook.NewConfig()
			tt.mod(c)
			a, err := webhook.New(c, env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New got %v", err)
				}
				_ = a.Stop(ctxT(t))
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
