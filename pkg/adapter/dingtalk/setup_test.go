// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/secret"
)

func TestValidate(t *testing.T) {
	check := adaptertest.ValidateCheck(t, NewConfig, configure)
	check("", func(*Config) {})
	check("client_id", func(c *Config) { c.ClientID = " " })
	check("api_url", func(c *Config) { c.APIURL = "ftp://x" })
	check("api_url", func(c *Config) { c.APIURL = "https://x/?q=1" })
	check("oapi_url", func(c *Config) { c.OAPIURL = "ftp://x" })
	check("request_timeout", func(c *Config) { c.RequestTimeout = 0 })
	check("ping_interval", func(c *Config) { c.PingInterval = 0 })
	check("max_message_len", func(c *Config) { c.MaxMessageLen = 5001 })
	check("client_secret", func(c *Config) { c.ClientSecret = secret.Ref{} })
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
