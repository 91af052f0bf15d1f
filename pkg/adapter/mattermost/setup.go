// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults and limits of Config.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultPingInterval   = 30 * time.Second
	// MaxPostRunes is the length limit of a post on current Mattermost
	// servers (16383 characters); older servers allowed 4000.
	MaxPostRunes = 16383
	// DefaultMaxMessageLen is the split size: the limit of old servers,
	// safe on every server.
	DefaultMaxMessageLen = 4000
)

// Config is the configuration of one Mattermost platform instance, the keys
// of its section under platforms:. README.md documents every key.
type Config struct {
	// URL is the server's base URL, e.g. https://chat.example.com. Required.
	URL string `yaml:"url"`
	// Token is a bot account's access token or a user's personal access
	// token. Required.
	Token secret.Ref `yaml:"token"`
	// RequestTimeout bounds every REST call, the websocket handshake and
	// each ping. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// PingInterval is how often the websocket is pinged; a ping unanswered
	// within request_timeout ends the connection. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// MentionOnly passes on posts in public and private channels only when
	// they mention the bot's @username. Default true.
	MentionOnly bool `yaml:"mention_only"`
	// MaxMessageLen is the split size for replies, in characters. Default
	// 4000, at most 16383.
	MaxMessageLen int `yaml:"max_message_len"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		RequestTimeout: DefaultRequestTimeout,
		PingInterval:   DefaultPingInterval,
		MentionOnly:    true,
		MaxMessageLen:  DefaultMaxMessageLen,
	}
}

// Validate checks c; keys in errors are relative to the platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	ck.BaseURL("url", c.URL)
	ck.Secret("token", c.Token, "")
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	ck.Duration("ping_interval", c.PingInterval, time.Second, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, MaxPostRunes)
	return ck.Err()
}

// baseURL returns URL without trailing slashes.
func (c *Config) baseURL() string { return strings.TrimRight(c.URL, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "mattermost"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
