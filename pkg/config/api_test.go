// SPDX-License-Identifier: Apache-2.0

package config

import (
	"strings"
	"testing"
)

func TestAPI(t *testing.T) {
	c, err := Parse("herald.yaml", []byte("platforms:\n  testplat:\n    token: {credential: x}\n    home_chat: ops\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "" || c.API.MaxBodyBytes != 64<<10 || c.Platforms["testplat"].HomeChat != "ops" {
		t.Fatalf("defaults: api %+v, home_chat %q", c.API, c.Platforms["testplat"].HomeChat)
	}
	c, err = Parse("herald.yaml", []byte("api:\n  listen: 127.0.0.1:8090\n  token: {credential: herald-api}\n"))
	if err != nil || c.API.Token.Credential != "herald-api" {
		t.Fatalf("api with a token: %+v %v", c.API, err)
	}
	for src, want := range map[string]string{
		"api:\n  listen: 127.0.0.1:8090\n":                    "api.token: required with api.listen",
		"api:\n  listen: nope\n  token: {credential: a}\n":    "api.listen: \"nope\" is not host:port",
		"api:\n  max_body_bytes: -1\n":                        "api.max_body_bytes: must be at least 1",
		"api:\n  listen: 127.0.0.1:1\n  token: {file: rel}\n": "api.token: file \"rel\" must be an absolute path",
		"api:\n  listen: 127.0.0.1:1\n  token: s3cret\n":      "api.token: expected a mapping",
	} {
		_, err := Parse("herald.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
}

func TestDMPolicy(t *testing.T) {
	for src, want := range map[string]string{
		"":                           "allowlist",
		"    allow_all: true\n":      "open",
		"    dm_policy: pairing\n":   "pairing",
		"    dm_policy: open\n":      "open",
		"    dm_policy: allowlist\n": "allowlist",
	} {
		c, err := Parse("herald.yaml", []byte("platforms:\n  testplat:\n    token: {credential: x}\n"+src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := c.Platforms["testplat"].Policy(); got != want {
			t.Errorf("%q: policy %s, want %s", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"    dm_policy: everyone\n":                     "platforms.testplat.dm_policy: \"everyone\" is not one of allowlist, pairing, open",
		"    dm_policy: pairing\n    allow_all: true\n": "platforms.testplat.allow_all: allow_all: true contradicts dm_policy: pairing",
	} {
		_, err := Parse("herald.yaml", []byte("platforms:\n  testplat:\n    token: {credential: x}\n"+src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
}

func TestLimits(t *testing.T) {
	c, err := Parse("herald.yaml", []byte("limits:\n  per_user:\n    turns_per_minute: 5\n    turns_per_day: 100\n    max_queued: 3\n    exempt: [alice, \"telegram:42\"]\n    exempt_allowed_users: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Limits.PerUser; l.TurnsPerMinute != 5 || l.TurnsPerDay != 100 || l.MaxQueued != 3 || len(l.Exempt) != 2 || !l.ExemptAllowedUsers {
		t.Fatalf("limits %+v", l)
	}
	_, err = Parse("herald.yaml", []byte("limits:\n  per_user:\n    turns_per_day: -1\n"))
	if err == nil || !strings.Contains(err.Error(), "limits.per_user.turns_per_day: must not be negative") {
		t.Fatalf("negative limit: %v", err)
	}
}
