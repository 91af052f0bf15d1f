// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/secret"
)

func validConfig() *Config {
	c := newConfig(DomainFeishu)
	c.AppID = "cli_a1b2"
	c.AppSecret = secret.Ref{Credential: "feishu-secret"}
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantKey string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"lark", func(c *Config) { c.Domain = DomainLark }, ""},
		{"base_url", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/prefix/" }, ""},
		{"no app_id", func(c *Config) { c.AppID = "" }, "app_id"},
		{"app_id with space", func(c *Config) { c.AppID = "cli x" }, "app_id"},
		{"no app_secret", func(c *Config) { c.AppSecret = secret.Ref{} }, "app_secret"},
		{"bad domain", func(c *Config) { c.Domain = "larksuite" }, "domain"},
		{"base_url without scheme", func(c *Config) { c.BaseURL = "open.feishu.cn" }, "base_url"},
		{"base_url with query", func(c *Config) { c.BaseURL = "https://x?y=1" }, "base_url"},
		{"max_message_len 0", func(c *Config) { c.MaxMessageLen = 0 }, "max_message_len"},
		{"max_message_len too big", func(c *Config) { c.MaxMessageLen = MaxMaxMessageLen + 1 }, "max_message_len"},
		{"request_timeout 0", func(c *Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{"fragment_ttl too long", func(c *Config) { c.FragmentTTL = time.Hour }, "fragment_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mod(c)
			adaptertest.WantFieldError(t, c.Validate(), tt.wantKey)
		})
	}
}

func TestRegisteredTypes(t *testing.T) {
	for name, domain := range map[string]string{"feishu": DomainFeishu, "lark": DomainLark} {
		typ, ok := adapter.Lookup(name)
		if !ok {
			t.Fatalf("type %q not registered", name)
		}
		c, ok := typ.NewConfig().(*Config)
		if !ok {
			t.Fatalf("%s: NewConfig returned %T", name, typ.NewConfig())
		}
		if c.Domain != domain || c.MaxMessageLen != DefaultMaxMessageLen || c.RequestTimeout != DefaultRequestTimeout ||
			c.FragmentTTL != DefaultFragmentTTL || !c.RequireMention {
			t.Errorf("%s defaults: %+v", name, c)
		}
	}
	if got := (&Config{Domain: DomainLark}).baseURL(); got != "https://open.larksuite.com" {
		t.Errorf("lark base URL %q", got)
	}
	if got := (&Config{Domain: DomainFeishu, BaseURL: "http://127.0.0.1:9/"}).baseURL(); got != "http://127.0.0.1:9" {
		t.Errorf("base_url override %q", got)
	}
}

func TestFactory(t *testing.T) {
	typ, _ := adapter.Lookup("feishu")
	env := adapter.Env{Name: "work", Report: func(adapter.Status) {}, Metrics: adapter.NopMetrics{}}
	if _, err := typ.New(struct{}{}, env); err == nil {
		t.Error("factory accepted a foreign config type")
	}
	c := validConfig()
	c.AppSecret = secret.Ref{File: filepath.Join(t.TempDir(), "missing")}
	if _, err := typ.New(c, env); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Errorf("missing secret file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.AppSecret = secret.Ref{File: path}
	a, err := typ.New(c, env)
	if err != nil {
		t.Fatal(err)
	}
	if n := a.(*Adapter).Name; n != "work" || a.(*Adapter).secret.Reveal() != "s3cret" {
		t.Errorf("adapter %q secret read wrongly", n)
	}
}
