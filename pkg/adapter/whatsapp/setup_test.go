// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestValidate(t *testing.T) {
	check := adaptertest.ValidateCheck(t, NewConfig, configure)
	check("", func(*Config) {})
	check("phone_number_id", func(c *Config) { c.PhoneNumberID = "+1 555" })
	check("access_token", func(c *Config) { c.AccessToken = secret.Ref{} })
	check("app_secret", func(c *Config) { c.AppSecret = secret.Ref{} })
	check("verify_token", func(c *Config) { c.VerifyToken = secret.Ref{} })
	check("path", func(c *Config) { c.Path = "/whatsapp/" })
	check("path", func(c *Config) { c.Path = "/a/../b" })
	check("path", func(c *Config) { c.Path = "/{x}" })
	check("graph_url", func(c *Config) { c.GraphURL = "ftp://graph" })
	check("api_version", func(c *Config) { c.APIVersion = "21" })
	check("request_timeout", func(c *Config) { c.RequestTimeout = 0 })
	check("max_body_bytes", func(c *Config) { c.MaxBodyBytes = 0 })
	check("max_message_len", func(c *Config) { c.MaxMessageLen = MaxTextLen + 1 })
	check("template_name", func(c *Config) { c.TemplateName = "Hello World" })
	check("template_name", func(c *Config) { c.TemplateName = strings.Repeat("a", maxTemplateName+1) })
	check("", func(c *Config) { c.TemplateName = strings.Repeat("a", maxTemplateName) })
	check("template_language", func(c *Config) { c.TemplateLanguage = "english" })
	check("template_text_param", func(c *Config) { c.TemplateTextParam = true })
}

func TestNewRefusesEmptySecretAndKeepsItOutOfErrors(t *testing.T) {
	c := NewConfig()
	configure(t, c, "http://127.0.0.1:1")
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.AppSecret = secret.Ref{File: p}
	if _, err := New(c, adapter.Env{}); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Fatalf("New with an empty app secret: %v", err)
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.Path = "/wa/hook" })
	var got []string
	for _, r := range h.a.Routes() {
		got = append(got, r.Pattern)
	}
	if strings.Join(got, ",") != "GET /wa/hook,POST /wa/hook" {
		t.Fatalf("routes %v", got)
	}
	typ, _ := adapter.Lookup(TypeName)
	if !typ.Passive || typ.DeduplicatesSends {
		t.Errorf("type %+v: want passive, not deduplicating sends", typ)
	}
}
