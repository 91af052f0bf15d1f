// SPDX-License-Identifier: Apache-2.0

package adminapi

import (
	"time"

	"github.com/heraldgw/herald/pkg/store"
)

// StatusReport is what GET /status on the admin endpoint returns; `herald
// status` prints it.
type StatusReport struct {
	Version          string           `json:"version"`
	PID              int              `json:"pid"`
	StartedAt        time.Time        `json:"started_at"`
	Config           string           `json:"config"`
	State            string           `json:"state"` // running | stopping
	StatusLine       string           `json:"status_line"`
	Platforms        []PlatformReport `json:"platforms"`
	TurnsInFlight    int              `json:"turns_in_flight"`
	QueueDepth       int              `json:"queue_depth"`
	Sessions         int              `json:"sessions"`
	RepliesPending   int              `json:"replies_pending"`
	OldestPendingAge float64          `json:"oldest_pending_age_seconds"`
	LastReloadError  string           `json:"last_reload_error,omitempty"`
	// AgentMode is how kind hermes runs turns ("runs" or
	// "chat_completions", "" before the first turn or for other kinds);
	// AgentNote says why (the missing capability of a fallback).
	AgentMode string       `json:"agent_mode,omitempty"`
	AgentNote string       `json:"agent_note,omitempty"`
	Store     *StoreReport `json:"store,omitempty"`
	Users     *UsersReport `json:"users,omitempty"`
}

// PlatformReport is one platform's state in StatusReport.
type PlatformReport struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Phase   string    `json:"phase"`
	Since   time.Time `json:"since"`
	RetryAt time.Time `json:"retry_at,omitzero"`
	Error   string    `json:"error,omitempty"`
	Alarm   string    `json:"alarm,omitempty"`
}

// StoreReport is the message store's state in StatusReport.
type StoreReport struct {
	// Backend is "nats" for the JetStream store; empty for SQLite.
	Backend string `json:"backend,omitempty"`
	// Path is the SQLite file; with backend nats, the bucket and the
	// NATS servers.
	Path     string    `json:"path"`
	Writable bool      `json:"writable"`
	Since    time.Time `json:"since"`
	// Cause ("disk full") and Error describe why it cannot be written.
	Cause string `json:"cause,omitempty"`
	Error string `json:"error,omitempty"`
	// FreeBytes and TotalBytes are the space on its file system.
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
	// Unrecorded counts finished turns whose reply waits in memory for
	// the store to take it.
	Unrecorded int `json:"unrecorded_turns,omitempty"`
}

// UsersReport shows the users who talked most to the agent today against
// limits.per_user, in StatusReport.
type UsersReport struct {
	TurnsPerMinute int               `json:"turns_per_minute"`
	TurnsPerDay    int               `json:"turns_per_day"`
	MaxQueued      int               `json:"max_queued"`
	Top            []store.UserUsage `json:"top"`
}
