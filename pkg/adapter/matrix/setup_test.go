// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"", func(*Config) {}},
		{"homeserver", func(c *Config) { c.Homeserver = "matrix.example.org" }},
		{"homeserver", func(c *Config) { c.Homeserver = "https://u:p@matrix.example.org" }},
		{"access_token", func(c *Config) { c.AccessToken = secret.Ref{} }},
		{"poll_timeout", func(c *Config) { c.PollTimeout = 0 }},
		{"poll_timeout", func(c *Config) { c.PollTimeout = maxPollTimeout + 1 }},
		{"request_timeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"max_message_len", func(c *Config) { c.MaxMessageLen = maxMessageLen + 1 }},
		{"encrypted_notice", func(c *Config) { c.EncryptedNotice = " " }},
		{"join_invites_from[0]", func(c *Config) { c.JoinInvitesFrom = []string{"alice"} }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			c := testConfig(t, "https://matrix.example.org")
			tc.tweak(c)
			adaptertest.WantFieldError(t, c.Validate(), tc.key)
		})
	}
}

func TestNewRejectsBadToken(t *testing.T) {
	c := testConfig(t, "https://matrix.example.org")
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("two words"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.AccessToken = secret.Ref{File: p}
	if _, err := New(c, adapter.Env{}); err == nil || strings.Contains(err.Error(), "two words") {
		t.Fatalf("New = %v, want an error that does not quote the token", err)
	}
}

// TestReadme keeps the README's defaults in step with NewConfig.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	d := NewConfig()
	for _, v := range []string{d.PollTimeout.String(), d.RequestTimeout.String(), fmt.Sprint(d.MaxMessageLen), fmt.Sprint(d.RequireMention)} {
		if !strings.Contains(string(b), "`"+v+"`") {
			t.Errorf("README does not show the default %q", v)
		}
	}
}
