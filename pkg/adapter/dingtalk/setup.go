// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults of Config.
const (
	DefaultAPIURL         = "https://api.dingtalk.com"
	DefaultOAPIURL        = "https://oapi.dingtalk.com"
	DefaultRequestTimeout = 10 * time.Second
	DefaultPingInterval   = 30 * time.Second
	// DefaultMaxMessageLen is the split size for replies, in characters.
	// DingTalk's text message limit is 20000 bytes; 4000 characters of
	// up to four UTF-8 bytes stay within it.
	DefaultMaxMessageLen = 4000
	maxMessageLen        = 5000
)

// Config is the configuration of one DingTalk platform instance, the keys
// of its section under platforms:. README.md documents every key.
type Config struct {
	// ClientID is the app's Client ID (formerly AppKey). Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the app's Client Secret (formerly AppSecret).
	// Required.
	ClientSecret secret.Ref `yaml:"client_secret"`
	// RobotCode is the robot's code for the robot send APIs. Default: the
	// robotCode of the message being answered, else ClientID (the robot
	// code of an internal app's robot is its Client ID).
	RobotCode string `yaml:"robot_code"`
	// APIURL is the OpenAPI base URL. Default https://api.dingtalk.com.
	APIURL string `yaml:"api_url"`
	// OAPIURL is the base URL of the legacy server API, which holds the
	// media upload (media/upload). Default https://oapi.dingtalk.com.
	OAPIURL string `yaml:"oapi_url"`
	// RequestTimeout bounds every HTTP call, the websocket dial and every
	// frame write. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// PingInterval is how often herald pings the stream; a ping not
	// answered within RequestTimeout ends the connection. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// MaxMessageLen is the split size the core uses for replies, in
	// characters. Default 4000.
	MaxMessageLen int `yaml:"max_message_len"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		APIURL:         DefaultAPIURL,
		OAPIURL:        DefaultOAPIURL,
		RequestTimeout: DefaultRequestTimeout,
		PingInterval:   DefaultPingInterval,
		MaxMessageLen:  DefaultMaxMessageLen,
	}
}

// Validate checks c. Keys in the returned errors are relative to the
// platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	if strings.TrimSpace(c.ClientID) == "" {
		ck.Add("client_id", "required: the app's Client ID (AppKey)")
	}
	ck.Secret("client_secret", c.ClientSecret, "")
	ck.BaseURL("api_url", c.APIURL)
	ck.BaseURL("oapi_url", c.OAPIURL)
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	ck.Duration("ping_interval", c.PingInterval, time.Second, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, maxMessageLen)
	return ck.Err()
}

func (c *Config) baseURL() string { return strings.TrimRight(c.APIURL, "/") }

func (c *Config) oapiURL() string { return strings.TrimRight(c.OAPIURL, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "dingtalk"

func init() {
	adapter.Register(adapter.Define(TypeName, NewConfig, New))
}
