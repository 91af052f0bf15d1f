// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"net/url"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Gateway intents (https://docs.discord.com/developers/events/gateway#gateway-intents).
const (
	IntentGuilds         = 1 << 0
	IntentGuildMessages  = 1 << 9
	IntentDirectMessages = 1 << 12
	// IntentMessageContent is privileged: it must be enabled for the bot in
	// the developer portal, else the gateway closes with 4014.
	IntentMessageContent = 1 << 15

	// DefaultIntents is what herald needs to read messages in guild channels
	// and direct messages.
	DefaultIntents = IntentGuilds | IntentGuildMessages | IntentDirectMessages | IntentMessageContent
)

// Defaults of the configuration keys.
const (
	DefaultAPIURL         = "https://discord.com/api/v10"
	DefaultRequestTimeout = 10 * time.Second
	// DefaultResumeWindow bounds the age of a saved session herald tries to
	// resume after a restart. Discord: a session left without a close
	// 1000/1001 "will remain active and timeout after a few minutes"
	// (Gateway, Initiating a Disconnect). A Resume past that costs one
	// refused attempt and 1–5 s before Identify, so the window errs long.
	DefaultResumeWindow = 5 * time.Minute
	// MaxResumeWindow is far beyond any session Discord keeps; larger
	// values are typos.
	MaxResumeWindow = time.Hour
	// MaxContentLen is Discord's limit for the content of a bot message, in
	// characters.
	MaxContentLen = 2000
)

// Config is the platforms.<name> section of a discord platform.
type Config struct {
	// Token is the bot token (required). Never written in the file itself.
	Token secret.Ref `yaml:"token"`
	// APIURL is the REST base including the version. Default
	// https://discord.com/api/v10. The gateway URL is discovered through
	// GET {api_url}/gateway/bot.
	APIURL string `yaml:"api_url"`
	// Intents is the gateway intents bitfield sent in Identify. Default
	// GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT (37377).
	Intents int `yaml:"intents"`
	// RequireMention: in guild channels only messages that mention the bot
	// or reply to one of its messages are taken. Default true. Direct
	// messages are always taken.
	RequireMention bool `yaml:"require_mention"`
	// RequestTimeout bounds one REST request, the websocket handshake and
	// the wait for Hello. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxMessageLen is the split size reported to the core (characters).
	// Default and maximum 2000.
	MaxMessageLen int `yaml:"max_message_len"`
	// ResumeWindow: a session saved in the platform's state directory is
	// resumed after a restart if it was saved at most this long ago.
	// Default 5m; 0 keeps sessions in memory only (a restart identifies).
	ResumeWindow time.Duration `yaml:"resume_window"`
}

// NewConfig returns a Config with the defaults filled in.
func NewConfig() *Config {
	return &Config{
		APIURL:         DefaultAPIURL,
		Intents:        DefaultIntents,
		RequireMention: true,
		RequestTimeout: DefaultRequestTimeout,
		MaxMessageLen:  MaxContentLen,
		ResumeWindow:   DefaultResumeWindow,
	}
}

// Validate checks the values; keys are relative to the platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	ck.Secret("token", c.Token, "the bot token")
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		ck.Add("api_url", "%q is not an http(s) URL", c.APIURL)
	}
	switch {
	case c.Intents <= 0 || c.Intents >= 1<<30:
		ck.Add("intents", "%d is not a gateway intents bitfield", c.Intents)
	case c.Intents&(IntentGuildMessages|IntentDirectMessages) == 0:
		ck.Add("intents", "%d has neither GUILD_MESSAGES (512) nor DIRECT_MESSAGES (4096): herald would receive no messages", c.Intents)
	}
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxContentLen)
	if c.ResumeWindow < 0 || c.ResumeWindow > MaxResumeWindow {
		ck.Add("resume_window", "%v is outside 0..%v (0 = do not resume across restarts)", c.ResumeWindow, MaxResumeWindow)
	}
	return ck.Err()
}

// TypeName is the platform type name in herald.yaml.
const TypeName = "discord"

func init() {
	t := adapter.Define(TypeName, NewConfig, New)
	// Discord drops a create with a nonce it saw in the past few minutes
	// (enforce_nonce), so the core may retry a send whose outcome is
	// unknown.
	t.DeduplicatesSends = true
	adapter.Register(t)
}
