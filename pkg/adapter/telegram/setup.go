// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults of Config.
const (
	DefaultAPIURL         = "https://api.telegram.org"
	DefaultPollTimeout    = 50 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultConflictWindow = 60 * time.Second
	// MaxTextUnits is Telegram's limit for one message's text: 4096 UTF-16
	// code units after entity parsing (herald sends plain text, so the text
	// as sent).
	MaxTextUnits = 4096

	maxPollTimeout = 10 * time.Minute
)

// Values of Config.InterruptedSend (see adapter.ResendMarked and
// adapter.AtMostOnce).
const (
	ResendMarked  = adapter.ResendMarked
	AtMostOnce    = adapter.AtMostOnce
	RecoveredMark = adapter.RecoveredMark
)

// Config is the configuration of one Telegram platform instance, the keys of
// its section under platforms:. NewConfig returns it with defaults; README.md
// documents every key.
type Config struct {
	// Token is the bot token from @BotFather. Required.
	Token secret.Ref `yaml:"token"`
	// APIURL is the Bot API base URL. Default https://api.telegram.org.
	APIURL string `yaml:"api_url"`
	// PollTimeout is getUpdates' timeout parameter, a whole number of
	// seconds. The HTTP request may take PollTimeout + RequestTimeout.
	// Default 50s.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// RequestTimeout bounds every other call (getMe, sendMessage …) and is
	// the grace on top of PollTimeout for getUpdates. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ConflictWindow is how long after start a 409 Conflict is taken for
	// the previous instance's lingering poll: retried quietly. After it the
	// 409 raises the Status alarm. Default 60s (longer than one poll).
	ConflictWindow time.Duration `yaml:"conflict_window"`
	// GroupMentionOnly passes group messages on only when they mention the
	// bot, reply to it, or are commands. Default true.
	GroupMentionOnly bool `yaml:"group_mention_only"`
	// MaxMessageLen is the split size the core uses for replies, in
	// characters (code points). Default 4096. A part longer than 4096
	// UTF-16 code units is sent as several Telegram messages.
	MaxMessageLen int `yaml:"max_message_len"`
	// AllowedUpdates is getUpdates' allowed_updates. Default [message,
	// callback_query]. Message updates become messages and callback
	// queries button presses; others are counted and skipped. Without
	// callback_query herald shows no buttons.
	AllowedUpdates []string `yaml:"allowed_updates"`
	// InterruptedSend is what becomes of a reply whose sendMessage may or
	// may not have reached Telegram (herald was killed during it, or the
	// answer was lost): ResendMarked (default) or AtMostOnce. Telegram has
	// no idempotency key and no history to look in.
	InterruptedSend string `yaml:"interrupted_send"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		APIURL:           DefaultAPIURL,
		PollTimeout:      DefaultPollTimeout,
		RequestTimeout:   DefaultRequestTimeout,
		ConflictWindow:   DefaultConflictWindow,
		GroupMentionOnly: true,
		MaxMessageLen:    MaxTextUnits,
		AllowedUpdates:   []string{"message", "callback_query"},
		InterruptedSend:  ResendMarked,
	}
}

// Validate checks c. Keys in the returned errors are relative to the
// platform section. The token's file is not read here (New reads it); the
// shape of a given token reference is checked by secret.Ref's own Validate.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) { errs = append(errs, config.Errorf(key, format, args...)) }
	if c.Token.IsZero() {
		add("token", "required: {credential: NAME} or {file: /absolute/path}")
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		add("api_url", "%q is not an http(s) URL without query, fragment or user info", c.APIURL)
	}
	switch {
	case c.PollTimeout < time.Second:
		add("poll_timeout", "%s is shorter than 1s (0 would turn long polling into a busy loop)", c.PollTimeout)
	case c.PollTimeout > maxPollTimeout:
		add("poll_timeout", "%s is longer than the %s limit", c.PollTimeout, maxPollTimeout)
	case c.PollTimeout%time.Second != 0:
		add("poll_timeout", "%s is not a whole number of seconds", c.PollTimeout)
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout", "must be positive")
	}
	if c.MaxMessageLen < 1 || c.MaxMessageLen > MaxTextUnits {
		add("max_message_len", "%d is not between 1 and %d", c.MaxMessageLen, MaxTextUnits)
	}
	if c.InterruptedSend != ResendMarked && c.InterruptedSend != AtMostOnce {
		add("interrupted_send", "%q is neither %s nor %s", c.InterruptedSend, ResendMarked, AtMostOnce)
	}
	hasMessage := false
	seen := map[string]bool{}
	for i, u := range c.AllowedUpdates {
		key := fmt.Sprintf("allowed_updates[%d]", i)
		switch {
		case strings.TrimSpace(u) == "":
			add(key, "empty update type")
		case seen[u]:
			add(key, "%q listed twice", u)
		}
		seen[u] = true
		hasMessage = hasMessage || u == "message"
	}
	if !hasMessage {
		add("allowed_updates", "must include message (herald only handles message updates)")
	}
	return errors.Join(errs...)
}

// baseURL returns APIURL without trailing slashes.
func (c *Config) baseURL() string { return strings.TrimRight(c.APIURL, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "telegram"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
