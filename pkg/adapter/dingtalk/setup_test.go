// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		key  string
		edit func(*Config)
	}{
		{"", func(*Config) {}},
		{"client_id", func(c *Config) { c.ClientID = " " }},
		{"api_url", func(c *Config) { c.APIURL = "ftp://x" }},
		{"api_url", func(c *Config) { c.APIURL = "https://x/?q=1" }},
		{"oapi_url", func(c *Config) { c.OAPIURL = "ftp://x" }},
		{"request_timeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"ping_interval", func(c *Config) { c.PingInterval = 0 }},
		{"max_message_len", func(c *Config) { c.MaxMessageLen = 5001 }},
	} {
		conf := NewConfig()
		conf.ClientID = "dingid"
		conf.ClientSecret = adaptertest.SecretFile(t, "s", "secret")
		c.edit(conf)
		adaptertest.WantFieldError(t, conf.Validate(), c.key)
	}
	conf := NewConfig()
	conf.ClientID = "dingid"
	adaptertest.WantFieldError(t, conf.Validate(), "client_secret")
}

func TestStreamURL(t *testing.T) {
	u, err := streamURL(endpoint{Endpoint: "wss://wss-open-connection.dingtalk.com:443/connect", Ticket: "a b&c"})
	if err != nil || u != "wss://wss-open-connection.dingtalk.com:443/connect?ticket=a+b%26c" {
		t.Fatalf("streamURL = %q, %v", u, err)
	}
	if _, err := streamURL(endpoint{Endpoint: "https://x", Ticket: "t"}); err == nil {
		t.Fatal("an https endpoint was accepted")
	}
}
