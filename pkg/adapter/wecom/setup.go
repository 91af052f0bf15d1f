// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"regexp"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults and bounds of Config.
const (
	DefaultAPIURL         = "https://qyapi.weixin.qq.com"
	DefaultMaxBodyBytes   = 1 << 20
	DefaultRequestTimeout = 10 * time.Second
	// MaxTextBytes is WeCom's limit for the content of a text message, in
	// bytes of UTF-8.
	MaxTextBytes = 2048
	// DefaultMaxMessageLen is the split size in characters: 512 characters
	// of at most 4 bytes each always fit MaxTextBytes.
	DefaultMaxMessageLen = MaxTextBytes / 4

	maxMaxBodyBytes   = 32 << 20
	maxRequestTimeout = 5 * time.Minute
)

// Config is the configuration of one WeCom application, the keys of its
// section under platforms:. NewConfig returns it with defaults; README.md
// documents every key.
type Config struct {
	// CorpID is the enterprise's corp id (企业ID), ww…; it is also the
	// receive id inside every encrypted callback. Required.
	CorpID string `yaml:"corp_id"`
	// AgentID is the application's AgentId. Required.
	AgentID int64 `yaml:"agent_id"`
	// Secret is the application's Secret, exchanged for access tokens.
	// Required.
	Secret secret.Ref `yaml:"secret"`
	// Token is the callback Token set on the application's 接收消息 page.
	// Required.
	Token secret.Ref `yaml:"token"`
	// EncodingAESKey is the callback EncodingAESKey (43 characters).
	// Required.
	EncodingAESKey secret.Ref `yaml:"encoding_aes_key"`
	// Path is the callback URL path herald serves. Default
	// /wecom/<instance name>.
	Path string `yaml:"path"`
	// APIURL is the server API base URL. Default https://qyapi.weixin.qq.com.
	APIURL string `yaml:"api_url"`
	// AdapterLimits: request_timeout and max_message_len.
	// RequestTimeout bounds every API call, and reading and storing one
	// callback. Default 10s.
	// MaxMessageLen is the split size for replies in characters. Default
	// 512, at most 2048; a part over 2048 bytes is refused.
	config.AdapterLimits `yaml:",inline"`
	// MaxBodyBytes is the largest callback body accepted (413 above).
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		APIURL:        DefaultAPIURL,
		AdapterLimits: config.AdapterLimits{RequestTimeout: DefaultRequestTimeout, MaxMessageLen: DefaultMaxMessageLen},
		MaxBodyBytes:  DefaultMaxBodyBytes,
	}
}

var corpIDRE = regexp.MustCompile(`^[A-Za-z0-9]+$`) // 1 to maxUserIDLen: validID

// Validate checks c (config.Validator). Secret files are read by New.
func (c *Config) Validate() error {
	var ck config.Checks
	if !validID(corpIDRE, c.CorpID) {
		ck.Add("corp_id", "%q is not a WeCom corp id (letters and digits)", c.CorpID)
	}
	if c.AgentID <= 0 {
		ck.Add("agent_id", "required: the application's AgentId (a positive number)")
	}
	ck.Secret("secret", c.Secret, "")
	ck.Secret("token", c.Token, "")
	ck.Secret("encoding_aes_key", c.EncodingAESKey, "")
	ck.Path("path", c.Path)
	ck.BaseURL("api_url", c.APIURL)
	c.AdapterLimits.Check(&ck, maxRequestTimeout, MaxTextBytes)
	ck.Bytes("max_body_bytes", c.MaxBodyBytes, maxMaxBodyBytes)
	return ck.Err()
}

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "wecom"

func init() {
	t := adapter.Define(TypeName, NewConfig, New)
	// Callbacks arrive on herald.socket, which starts herald.
	t.Passive = true
	t.EveryNode = true
	adapter.Register(t)
}
