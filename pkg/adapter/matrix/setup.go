// SPDX-License-Identifier: Apache-2.0

package matrix

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
	DefaultPollTimeout    = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxMessageLen keeps one message's body, at up to 4 bytes per
	// character, well inside the 65536-byte limit of a Matrix event.
	DefaultMaxMessageLen = 8000
	maxMessageLen        = 12000
	maxPollTimeout       = 5 * time.Minute
	// DefaultEncryptedNotice is what an encrypted room is told, once.
	DefaultEncryptedNotice = "This room is end-to-end encrypted. herald cannot read encrypted rooms: " +
		"messages here do not reach the agent. Talk to me in an unencrypted room or direct chat."
)

// Config is the configuration of one Matrix platform instance, the keys of
// its section under platforms:. README.md documents every key.
type Config struct {
	// Homeserver is the client-server API base URL, such as
	// https://matrix.example.org. Required.
	Homeserver string `yaml:"homeserver"`
	// AccessToken is the bot account's access token. Required.
	AccessToken secret.Ref `yaml:"access_token"`
	// PollTimeout is /sync's timeout parameter. Default 30s.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// RequestTimeout bounds every other call and is the grace on top of
	// PollTimeout for /sync. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RequireMention passes room messages (rooms with more than two
	// members) on only when they mention the bot. Default true.
	RequireMention bool `yaml:"require_mention"`
	// JoinInvitesFrom lists the Matrix user ids whose invites the bot
	// accepts; other invites are declined. The adapter does not see the
	// platform's allowed_users, so list the same ids here.
	JoinInvitesFrom []string `yaml:"join_invites_from"`
	// MaxMessageLen is the split size for replies, in characters.
	// Default 8000.
	MaxMessageLen int `yaml:"max_message_len"`
	// EncryptedNotice is sent once to an encrypted room.
	EncryptedNotice string `yaml:"encrypted_notice"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		PollTimeout:     DefaultPollTimeout,
		RequestTimeout:  DefaultRequestTimeout,
		RequireMention:  true,
		MaxMessageLen:   DefaultMaxMessageLen,
		EncryptedNotice: DefaultEncryptedNotice,
	}
}

// Validate checks c. Keys in the returned errors are relative to the
// platform section.
func (c *Config) Validate() error {
	var ck config.Checks
	ck.BaseURL("homeserver", c.Homeserver)
	ck.Secret("access_token", c.AccessToken, "")
	// Under 1s long polling turns into a busy loop.
	ck.Duration("poll_timeout", c.PollTimeout, time.Second, maxPollTimeout)
	ck.Timeout("request_timeout", c.RequestTimeout, 0)
	ck.Range("max_message_len", c.MaxMessageLen, 1, maxMessageLen)
	if strings.TrimSpace(c.EncryptedNotice) == "" {
		ck.Add("encrypted_notice", "must not be empty")
	}
	for i, u := range c.JoinInvitesFrom {
		if !validUserID(u) {
			ck.Add(fmt.Sprintf("join_invites_from[%d]", i), "%q is not a Matrix user id (@localpart:server)", u)
		}
	}
	return ck.Err()
}

// validUserID checks the shape @localpart:server.
func validUserID(s string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(s, "@"), ":")
	return strings.HasPrefix(s, "@") && ok && local != "" && server != "" && len(s) <= 255
}

// baseURL returns Homeserver without trailing slashes.
func (c *Config) baseURL() string { return strings.TrimRight(c.Homeserver, "/") }

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "matrix"

func init() {
	t := adapter.Define(TypeName, NewConfig, New)
	// PUT /send/{eventType}/{txnId} with herald's idempotency key as txnId:
	// the homeserver answers a repeated transaction with the first event.
	t.DeduplicatesSends = true
	adapter.Register(t)
}
