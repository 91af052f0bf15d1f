// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		key  string
	}{
		{func(*Config) {}, ""},
		{func(c *Config) { c.URL = "" }, "url"},
		{func(c *Config) { c.URL = "ftp://chat" }, "url"},
		{func(c *Config) { c.URL = "https://u:p@chat" }, "url"},
		{func(c *Config) { c.Token.File = "" }, "token"},
		{func(c *Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{func(c *Config) { c.PingInterval = time.Millisecond }, "ping_interval"},
		{func(c *Config) { c.MaxMessageLen = MaxPostRunes + 1 }, "max_message_len"},
	} {
		conf := NewConfig()
		conf.URL = "https://chat.example.com"
		conf.Token = adaptertest.SecretFile(t, "token", "x")
		c.edit(conf)
		adaptertest.WantFieldError(t, conf.Validate(), c.key)
	}
}

func TestNewRefusesAnEmptyToken(t *testing.T) {
	conf := NewConfig()
	conf.URL = "https://chat.example.com"
	conf.Token = adaptertest.SecretFile(t, "token", "")
	if _, err := New(conf, adapter.Env{}); err == nil {
		t.Fatal("New accepted an empty token")
	}
}
