// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"fmt"
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
	var ck config.Checks
	ck.Secret("token", c.Token, "")
	ck.BaseURL("api_url", c.APIURL)
	// Under 1s long polling turns into a busy loop; the Bot API takes
	// whole seconds.
	ck.Duration("poll_timeout", c.PollTimeout, time.Second, maxPollTimeout)
	if c.PollTimeout > time.Second && c.PollTimeout%time.Second != 0 {
		ck.Add("poll_timeout", "%s is not a whole number of seconds", c.PollTimeout)
	}
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxTextUnits)
	ck.OneOf("interrupted_send", c.InterruptedSend, ResendMarked, AtMostOnce)
	hasMessage := false
	seen := map[string]bool{}
	for i, u := range c.AllowedUpdates {
		key := fmt.Sprintf("allowed_updates[%d]", i)
		switch {
		case strings.TrimSpace(u) == "":
			ck.Add(key, "empty update type")
		case seen[u]:
			ck.Add(key, "%q listed twice", u)
		}
		seen[u] = true
		hasMessage = hasMessage || u == "message"
	}
	if !hasMessage {
		ck.Add("allowed_updates", "must include message (herald only handles message updates)")
	}
	return ck.Err()
}

// baseURL returns APIURL without trailing slashes.
func (c *Config) baseURL() string { return strings.TrimRight(c.APIURL, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "telegram"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
