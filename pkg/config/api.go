// SPDX-License-Identifier: Apache-2.0

package config

import (
	"net"

	"github.com/heraldgw/herald/pkg/secret"
)

// API configures the send API (POST /v1/messages) beyond the admin socket,
// which always serves it to root and herald's own user.
type API struct {
	// Listen is host:port of a TCP listener serving the send API to
	// callers with the bearer Token. Empty (the default): no listener.
	Listen string `yaml:"listen"`
	// Token is the bearer token TCP callers must present. Required with
	// Listen.
	Token secret.Ref `yaml:"token"`
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	// Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

func (c *Config) apiDefaults() {
	if c.API.MaxBodyBytes == 0 {
		c.API.MaxBodyBytes = 64 << 10
	}
}

func (c *Config) validateAPI(add func(key, format string, args ...any)) {
	if c.API.MaxBodyBytes < 1 {
		add("api.max_body_bytes", "must be at least 1")
	}
	if c.API.Listen != "" {
		if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
			add("api.listen", "%q is not host:port", c.API.Listen)
		}
		if c.API.Token.IsZero() {
			add("api.token", "required with api.listen: callers of the TCP listener present it as a bearer token")
		}
	}
	if !c.API.Token.IsZero() {
		if err := c.API.Token.Validate(); err != nil {
			add("api.token", "%v", err)
		}
	}
}
