// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestValidate(t *testing.T) {
	check := adaptertest.ValidateCheck(t, NewConfig, nil)
	check("", func(*Config) {})
	check("", func(c *Config) { c.Account = "+15550100" })
	check("", func(c *Config) { c.Account = "a7b1c2d3-0000-4000-8000-000000000001" })
	check("url", func(c *Config) { c.URL = "tcp://127.0.0.1:7583" })
	check("url", func(c *Config) { c.URL = "http://127.0.0.1:8080/?x=1" })
	check("account", func(c *Config) { c.Account = " +1555" })
	check("account", func(c *Config) { c.Account = "+1555&x=y" })
	check("request_timeout", func(c *Config) { c.RequestTimeout = 0 })
	check("idle_timeout", func(c *Config) { c.IdleTimeout = 10 * time.Millisecond })
	check("max_message_len", func(c *Config) { c.MaxMessageLen = 0 })
	check("interrupted_send", func(c *Config) { c.InterruptedSend = "maybe" })
}

func TestNewRejectsInvalid(t *testing.T) {
	c := NewConfig()
	c.URL = ""
	if _, err := New(c, adapter.Env{}); err == nil {
		t.Fatal("New accepted an empty url")
	}
	if _, err := New(nil, adapter.Env{}); err == nil {
		t.Fatal("New accepted no configuration")
	}
}
