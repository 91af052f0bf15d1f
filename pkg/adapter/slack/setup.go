// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"errors"
	"net"
	"net/url"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults of the configuration keys.
const (
	DefaultAPIURL         = "https://slack.com/api"
	DefaultPingInterval   = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultConflictWindow is conflict_window's default.
	DefaultConflictWindow = 60 * time.Second
	// DefaultMaxMessageLen stays under Slack's 40,000-character text limit
	// (beyond it Slack truncates) with room for the entities escape adds.
	DefaultMaxMessageLen = 39000
	// MaxTextLen is Slack's limit for the text of a message.
	MaxTextLen = 40000
)

// Config is the platforms.<name> section of a slack platform.
type Config struct {
	// AppToken is the app-level token (xapp-…, scope connections:write)
	// used for apps.connections.open. Required.
	AppToken secret.Ref `yaml:"app_token"`
	// BotToken is the bot token (xoxb-…, scopes chat:write, app_mentions:read,
	// im:history) used for chat.postMessage and chat.update. Required.
	BotToken secret.Ref `yaml:"bot_token"`
	// APIURL is the Web API base. Default https://slack.com/api. Plain http
	// is accepted only for a loopback host (the test fake).
	APIURL string `yaml:"api_url"`
	// PingInterval is how often herald pings the Socket Mode connection; a
	// ping unanswered within request_timeout drops the connection and
	// reconnects. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// RequestTimeout bounds one Web API request, the websocket handshake,
	// the wait for hello, a ping and storing one event. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ConflictWindow is how long Slack may count more Socket Mode
	// connections of the app than herald holds before the Status alarm
	// says another client holds one: a connection Slack has not seen
	// closed yet (the previous instance's right after a restart) counts
	// for a while. Default 60s.
	ConflictWindow time.Duration `yaml:"conflict_window"`
	// MaxMessageLen is the split size reported to the core, in characters.
	// Default 39000, at most 40000.
	MaxMessageLen int `yaml:"max_message_len"`
	// ReplyInThread answers a top-level mention in a channel in a thread
	// under it (the thread is also the session). Direct messages are
	// answered inline unless they were written in a thread. Default true.
	ReplyInThread bool `yaml:"reply_in_thread"`
}

// NewConfig returns a Config with the defaults filled in.
func NewConfig() *Config {
	return &Config{
		APIURL:         DefaultAPIURL,
		PingInterval:   DefaultPingInterval,
		RequestTimeout: DefaultRequestTimeout,
		ConflictWindow: DefaultConflictWindow,
		MaxMessageLen:  DefaultMaxMessageLen,
		ReplyInThread:  true,
	}
}

// Validate checks the values; keys are relative to the platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	ck.Secret("app_token", c.AppToken, "the app-level token (xapp-…)")
	ck.Secret("bot_token", c.BotToken, "the bot token (xoxb-…)")
	if err := checkAPIURL(c.APIURL); err != nil {
		ck.Add("api_url", "%v", err)
	}
	ck.Timeout("ping_interval", c.PingInterval, 10*time.Minute)
	ck.Timeout("request_timeout", c.RequestTimeout, 5*time.Minute)
	ck.Timeout("conflict_window", c.ConflictWindow, time.Hour)
	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxTextLen)
	return ck.Err()
}

// checkAPIURL accepts https URLs, and http only for loopback hosts: the
// tokens travel in the Authorization header.
func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("not an http(s) URL: " + s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return errors.New("plain http is only allowed for a loopback host: " + s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TypeName is the platform type registered with the adapter registry.
const TypeName = "slack"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
