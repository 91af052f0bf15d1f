// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"net/url"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Domains of the two deployments of the open platform.
const (
	DomainFeishu = "feishu" // https://open.feishu.cn (mainland China)
	DomainLark   = "lark"   // https://open.larksuite.com (international)
)

var domainURLs = map[string]string{
	DomainFeishu: "https://open.feishu.cn",
	DomainLark:   "https://open.larksuite.com",
}

// Defaults. See README.md for the reasoning behind each.
const (
	// DefaultMaxMessageLen is the split size for replies, a part a reader
	// can take in at once. Feishu itself bounds a text request at 150 KB.
	DefaultMaxMessageLen = 8000
	// MaxMaxMessageLen keeps a part of 4-byte characters, escaped twice
	// (content is JSON inside JSON), under the 150 KB request limit.
	MaxMaxMessageLen      = 30000
	DefaultRequestTimeout = 10 * time.Second
	DefaultFragmentTTL    = 10 * time.Second
)

// Config is the configuration of one feishu (or lark) platform instance,
// decoded strictly from its section under platforms:.
type Config struct {
	// AppID is the app's id (cli_…). Not a secret. Required.
	AppID string `yaml:"app_id"`
	// AppSecret is read from a systemd credential or a file. Required.
	AppSecret secret.Ref `yaml:"app_secret"`
	// Domain is feishu (open.feishu.cn) or lark (open.larksuite.com).
	// Default feishu for type feishu, lark for type lark.
	Domain string `yaml:"domain"`
	// BaseURL overrides the domain's URL, for tests against feishutest or a
	// proxy: http(s)://host[:port][/prefix].
	BaseURL string `yaml:"base_url"`
	// MaxMessageLen is the reply split size in characters. Default 8000,
	// at most 30000.
	MaxMessageLen int `yaml:"max_message_len"`
	// RequestTimeout bounds every REST call, the endpoint bootstrap and the
	// websocket handshake. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// FragmentTTL is how long a partly received fragmented event is kept
	// waiting for its other fragments. Default 10s.
	FragmentTTL time.Duration `yaml:"fragment_ttl"`
	// RequireMention makes group messages reach herald only when they
	// mention the bot. Direct messages are never gated. Default true.
	RequireMention bool `yaml:"require_mention"`
}

func newConfig(domain string) *Config {
	return &Config{
		Domain:         domain,
		MaxMessageLen:  DefaultMaxMessageLen,
		RequestTimeout: DefaultRequestTimeout,
		FragmentTTL:    DefaultFragmentTTL,
		RequireMention: true,
	}
}

// Validate checks the configuration without I/O. Keys are relative to the
// platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	switch {
	case c.AppID == "":
		ck.Add("app_id", "required (the app's id, cli_…)")
	case strings.TrimSpace(c.AppID) != c.AppID || strings.ContainsAny(c.AppID, " \t\r\n/"):
		ck.Add("app_id", "%q must not contain white space or '/'", c.AppID)
	}
	ck.Secret("app_secret", c.AppSecret, "")
	if _, ok := domainURLs[c.Domain]; !ok {
		ck.Add("domain", "%q is not one of feishu, lark", c.Domain)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			ck.Add("base_url", "%q is not an http(s)://host[:port][/prefix] URL", c.BaseURL)
		}
	}
	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxMaxMessageLen)
	ck.Timeout("request_timeout", c.RequestTimeout, 5*time.Minute)
	ck.Timeout("fragment_ttl", c.FragmentTTL, 5*time.Minute)
	return ck.Err()
}

// baseURL is where the bootstrap and REST calls go, without a trailing
// slash.
func (c *Config) baseURL() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	return domainURLs[c.Domain]
}

func init() {
	for _, domain := range []string{DomainFeishu, DomainLark} {
		// "lark" is the same adapter with the international domain as
		// default, so that `platforms: {lark: {app_id: …}}` works without a
		// type: line.
		t := adapter.Define(domain, func() *Config { return newConfig(domain) }, New)
		// Feishu drops a message whose uuid it saw in the past hour, so
		// the core may retry a send whose outcome is unknown.
		t.DeduplicatesSends = true
		adapter.Register(t)
	}
}
