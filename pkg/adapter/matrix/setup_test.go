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
	check := adaptertest.ValidateCheck(t, NewConfig, configure)
	check("", func(*Config) {})
	check("homeserver", func(c *Config) { c.Homeserver = "matrix.example.org" })
	check("homeserver", func(c *Config) { c.Homeserver = "https://u:p@matrix.example.org" })
	check("access_token", func(c *Config) { c.AccessToken = secret.Ref{} })
	check("poll_timeout", func(c *Config) { c.PollTimeout = 0 })
	check("poll_timeout", func(c *Config) { c.PollTimeout = maxPollTimeout + 1 })
	check("request_timeout", func(c *Config) { c.RequestTimeout = 0 })
	check("max_message_len", func(c *Config) { c.MaxMessageLen = maxMessageLen + 1 })
	check("encrypted_notice", func(c *Config) { c.EncryptedNotice = " " })
	check("join_invites_from[0]", func(c *Config) { c.JoinInvitesFrom = []string{"alice"} })
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
