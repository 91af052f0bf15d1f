// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
)

// Defaults of Config.
const (
	DefaultURL            = "http://127.0.0.1:8080"
	DefaultRequestTimeout = 30 * time.Second
	// DefaultIdleTimeout is three of signal-cli's keepalive intervals: the
	// daemon writes a comment line on the event stream every 15 s.
	DefaultIdleTimeout = 45 * time.Second
	// DefaultMaxMessageLen is the length Signal's apps show as one message
	// before turning the rest into a long-text attachment.
	DefaultMaxMessageLen = 2000
	// maxMessageLen bounds max_message_len: a part is one Signal message.
	maxMessageLen = 64 << 10

	minIdleTimeout = time.Second
)

// Values of Config.InterruptedSend (see adapter.ResendMarked and
// adapter.AtMostOnce).
const (
	ResendMarked  = adapter.ResendMarked
	AtMostOnce    = adapter.AtMostOnce
	RecoveredMark = adapter.RecoveredMark
)

// GroupPrefix starts the ChatID of a Signal group: "group:" followed by
// signal-cli's base64 group id. Any other ChatID is a recipient (a phone
// number in E.164 form, or an account's ACI UUID).
const GroupPrefix = "group:"

// Config is the configuration of one Signal platform instance, the keys of
// its section under platforms:. NewConfig returns it with defaults; README.md
// documents every key.
type Config struct {
	// URL is the base URL of the signal-cli daemon's HTTP endpoint.
	// Default http://127.0.0.1:8080.
	URL string `yaml:"url"`
	// Account selects the account of a daemon started without -a
	// (multi-account mode): its number (+E.164) or ACI. Empty for a daemon
	// started with -a ACCOUNT.
	Account string `yaml:"account"`
	// RequestTimeout bounds every JSON-RPC call and the opening of the
	// event stream. A send to a large group takes signal-cli a while.
	// Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// IdleTimeout: an event stream silent for this long (no event, no
	// keepalive) is taken for dead and reopened. Default 45s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxMessageLen is the split size the core uses for replies, in
	// characters (code points). Default 2000.
	MaxMessageLen int `yaml:"max_message_len"`
	// InterruptedSend is what becomes of a reply whose send may or may not
	// have reached Signal: ResendMarked (default) or AtMostOnce. Signal
	// has no idempotency key and signal-cli no history to look in.
	InterruptedSend string `yaml:"interrupted_send"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		URL:             DefaultURL,
		RequestTimeout:  DefaultRequestTimeout,
		IdleTimeout:     DefaultIdleTimeout,
		MaxMessageLen:   DefaultMaxMessageLen,
		InterruptedSend: ResendMarked,
	}
}

// Validate checks c. Keys in the returned errors are relative to the
// platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	ck.BaseURL("url", c.URL)
	if strings.TrimSpace(c.Account) != c.Account || strings.ContainsAny(c.Account, "/?#&") {
		ck.Add("account", "%q is not a number (+E.164) or an ACI", c.Account)
	}
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	// signal-cli sends a keepalive every 15s.
	ck.Duration("idle_timeout", c.IdleTimeout, minIdleTimeout, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, maxMessageLen)
	ck.OneOf("interrupted_send", c.InterruptedSend, ResendMarked, AtMostOnce)
	return ck.Err()
}

// baseURL returns URL without trailing slashes.
func (c *Config) baseURL() string { return strings.TrimRight(c.URL, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "signal"

func init() {
	// DeduplicatesSends stays false: Signal drops no repeated send.
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
