// SPDX-License-Identifier: Apache-2.0

package config

import "strings"

// Limits bounds what one user may ask of the agent.
type Limits struct {
	PerUser PerUser `yaml:"per_user"`
}

// PerUser are per-user budgets. Zero means no limit. Over a limit, the
// user gets one message saying when they can continue, and nothing is
// passed to the agent. Counts are kept in the store.
type PerUser struct {
	// TurnsPerMinute bounds a user's messages to the agent per calendar
	// minute.
	TurnsPerMinute int `yaml:"turns_per_minute"`
	// TurnsPerDay bounds them per calendar day (UTC).
	TurnsPerDay int `yaml:"turns_per_day"`
	// MaxQueued bounds a user's messages waiting for, or in, a turn.
	MaxQueued int `yaml:"max_queued"`
	// Exempt lists user ids without limits ("ID" on every platform, or
	// "PLATFORM:ID").
	Exempt []string `yaml:"exempt"`
	// ExemptAllowedUsers exempts the users of each platform's
	// allowed_users (the allowlisted admins); only users let in by
	// pairing or dm_policy: open are then limited.
	ExemptAllowedUsers bool `yaml:"exempt_allowed_users"`
}

func (c *Config) validateLimits(add func(key, format string, args ...any)) {
	l := c.Limits.PerUser
	for key, v := range map[string]int{"turns_per_minute": l.TurnsPerMinute, "turns_per_day": l.TurnsPerDay, "max_queued": l.MaxQueued} {
		if v < 0 {
			add("limits.per_user."+key, "must not be negative (0: no limit)")
		}
	}
	for i, u := range l.Exempt {
		if strings.TrimSpace(u) == "" {
			add("limits.per_user.exempt", "entry %d is empty", i)
		}
	}
}
