// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"account", func(c *Config) { c.Account = "+15550100" }, ""},
		{"aci account", func(c *Config) { c.Account = "a7b1c2d3-0000-4000-8000-000000000001" }, ""},
		{"url scheme", func(c *Config) { c.URL = "tcp://127.0.0.1:7583" }, "url"},
		{"url query", func(c *Config) { c.URL = "http://127.0.0.1:8080/?x=1" }, "url"},
		{"account spaces", func(c *Config) { c.Account = " +1555" }, "account"},
		{"account query", func(c *Config) { c.Account = "+1555&x=y" }, "account"},
		{"request timeout", func(c *Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{"idle timeout", func(c *Config) { c.IdleTimeout = 10 * time.Millisecond }, "idle_timeout"},
		{"max len", func(c *Config) { c.MaxMessageLen = 0 }, "max_message_len"},
		{"interrupted send", func(c *Config) { c.InterruptedSend = "maybe" }, "interrupted_send"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			tc.edit(c)
			adaptertest.WantFieldError(t, c.Validate(), tc.key)
		})
	}
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
