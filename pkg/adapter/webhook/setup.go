// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"fmt"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Signature schemes accepted on inbound requests (Config.Signature).
const (
	SchemeGitHub   = "github"
	SchemeStandard = "standard"
	SchemeAny      = "any"
)

// Defaults and bounds of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultRequestTimeout = 10 * time.Second
	maxMaxBodyBytes       = 32 << 20
	maxRequestTimeout     = 5 * time.Minute
	maxMessageLenLimit    = 1 << 20
	maxURLLen             = 2048
)

// Config is the configuration of one webhook platform instance, the keys of
// its section under platforms:. NewConfig returns it with defaults; README.md
// documents every key.
type Config struct {
	// Path is the URL path herald serves POST requests on. Default
	// /hooks/<instance name>.
	Path string `yaml:"path"`
	// Secret verifies inbound signatures. Required unless
	// InsecureNoSignature is set.
	Secret secret.Ref `yaml:"secret"`
	// InsecureNoSignature accepts unsigned requests. It must be explicit and
	// is logged at warning on every start.
	InsecureNoSignature bool `yaml:"insecure_no_signature"`
	// Signature is the inbound scheme: github, standard or any. Default any.
	Signature string `yaml:"signature"`
	// MaxBodyBytes is the largest request body accepted (413 above).
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AdapterLimits: request_timeout and max_message_len.
	// RequestTimeout bounds reading a request body and storing the message,
	// counted from the moment the handler starts. Default 10s.
	// MaxMessageLen is the longest reply part in characters; the core
	// splits longer replies. Default 4000.
	config.AdapterLimits `yaml:",inline"`
	// ReplyURL receives replies to messages that carry no reply_url of
	// their own. A per-message reply_url under this URL is always allowed.
	ReplyURL string `yaml:"reply_url"`
	// ReplyURLAllow lists URL prefixes a per-message reply_url may match.
	ReplyURLAllow []string `yaml:"reply_url_allow"`
	// OutboundSecret signs replies (Standard Webhooks). whsec_<base64> or
	// raw. Optional: without it replies are sent unsigned.
	OutboundSecret secret.Ref `yaml:"outbound_secret"`
}

// NewConfig returns a Config with defaults filled in (adapter.Type.NewConfig).
func NewConfig() *Config {
	return &Config{
		Signature:     SchemeAny,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		AdapterLimits: config.AdapterLimits{RequestTimeout: DefaultRequestTimeout, MaxMessageLen: 4000},
	}
}

// DemoDefaults turns c into the built-in configuration used by `herald run`
// without a configuration file (config.Default): unsigned inbound requests,
// which is only acceptable because that listener is on 127.0.0.1, and no
// reply URL, so replies fail permanently with "no reply_url" unless an
// operator configures one.
func (c *Config) DemoDefaults() {
	c.InsecureNoSignature = true
	c.Secret = secret.Ref{}
	c.ReplyURL = ""
	c.ReplyURLAllow = nil
}

// Validate checks c (config.Validator). The shape of secret references is
// checked by the config decoder (secret.Ref.Validate) and again when New
// reads them; here only their presence is.
func (c *Config) Validate() error {
	var ck config.Checks
	if c.Path != "" {
		if err := validPath(c.Path); err != nil {
			ck.Add("path", "%v", err)
		}
	}
	switch {
	case c.InsecureNoSignature && !c.Secret.IsZero():
		ck.Add("insecure_no_signature", "insecure_no_signature: true and secret exclude each other")
	case !c.InsecureNoSignature && c.Secret.IsZero():
		ck.Add("secret", "required (or set insecure_no_signature: true to accept unsigned requests)")
	}
	ck.OneOf("signature", c.Signature, SchemeGitHub, SchemeStandard, SchemeAny)
	ck.Bytes("max_body_bytes", c.MaxBodyBytes, maxMaxBodyBytes)
	c.AdapterLimits.Check(&ck, maxRequestTimeout, maxMessageLenLimit)
	if c.ReplyURL != "" {
		if _, err := parseReplyURL(c.ReplyURL); err != nil {
			ck.Add("reply_url", "%v", err)
		}
	}
	for i, p := range c.ReplyURLAllow {
		if _, err := parseReplyURL(p); err != nil {
			ck.Add(fmt.Sprintf("reply_url_allow[%d]", i), "%v", err)
		}
	}
	return ck.Err()
}

// validPath accepts a plain absolute path usable in a net/http.ServeMux
// pattern: no wildcards, no trailing slash (which would match a subtree).
func validPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /", p)
	case len(p) > 1 && strings.HasSuffix(p, "/"), p == "/":
		return fmt.Errorf("%q must not end with /", p)
	case strings.ContainsAny(p, "{}?#% \t\r\n\x00"):
		return fmt.Errorf("%q may not contain {, }, ?, #, %%, or white space", p)
	case strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/.."):
		return fmt.Errorf("%q is not a clean path", p)
	}
	return nil
}

// TypeName is the adapter type name (platforms.<name>.type).
const TypeName = "webhook"

func init() {
	t := adapter.Define(TypeName, NewConfig, New)
	// Replies carry Idempotency-Key and webhook-id, stable across retries:
	// a receiver following Standard Webhooks drops a retried reply it
	// already has.
	t.DeduplicatesSends = true
	// Requests on herald.socket start herald.
	t.Passive = true
	t.EveryNode = true
	adapter.Register(t)
}
