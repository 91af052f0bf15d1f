// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestValidate(t *testing.T) {
	check := adaptertest.ValidateCheck(t, NewConfig, configure)
	check("", func(*Config) {})
	check("url", func(c *Config) { c.URL = "" })
	check("url", func(c *Config) { c.URL = "ftp://chat" })
	check("url", func(c *Config) { c.URL = "https://u:p@chat" })
	check("token", func(c *Config) { c.Token.File = "" })
	check("request_timeout", func(c *Config) { c.RequestTimeout = 0 })
	check("ping_interval", func(c *Config) { c.PingInterval = time.Millisecond })
	check("max_message_len", func(c *Config) { c.MaxMessageLen = MaxPostRunes + 1 })
}

func TestNewRefusesAnEmptyToken(t *testing.T) {
	conf := NewConfig()
	conf.URL = "https://chat.example.com"
	conf.Token = adaptertest.SecretFile(t, "token", "")
	if _, err := New(conf, adapter.Env{}); err == nil {
		t.Fatal("New accepted an empty token")
	}
}
