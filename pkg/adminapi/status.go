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
	// Cluster is this node's view of the cluster; nil without cluster
	// mode.
	Cluster *ClusterReport `json:"cluster,omitempty"`
}

// ClusterReport is one node's view of the cluster in StatusReport.
type ClusterReport struct {
	Node string `json:"node"`
	// Member: this node holds its membership. A node that is not a
	// member holds no lease.
	Member  bool            `json:"member"`
	Members []ClusterMember `json:"members"`
	// PartitionCount is cluster.partitions; LeaseTTL is cluster.lease_ttl
	// in seconds.
	PartitionCount int     `json:"partition_count"`
	LeaseTTL       float64 `json:"lease_ttl_seconds"`
	// Partitions and Platforms are the leases this node holds.
	Partitions []int    `json:"partitions"`
	Platforms  []string `json:"platforms"`
	// PartitionHolders counts the partitions each node holds, and
	// PlatformHolders names the holder of each platform lease, as this
	// node sees the leases bucket.
	PartitionHolders map[string]int    `json:"partition_holders"`
	PlatformHolders  map[string]string `json:"platform_holders"`
	// Unheld lists the leases no node holds: partitions, and platforms
	// some member runs. UnheldSince is since when the longest-unheld of
	// them has had no holder, as this node saw at its status ticks.
	UnheldPartitions []int     `json:"unheld_partitions,omitempty"`
	UnheldPlatforms  []string  `json:"unheld_platforms,omitempty"`
	UnheldSince      time.Time `json:"unheld_since,omitzero"`
	// MemberChanges counts changes of the member list since start.
	MemberChanges uint64    `json:"member_changes"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	// NATS is the cluster's NATS connection state ("CONNECTED",
	// "RECONNECTING", ...).
	NATS string `json:"nats"`
	// Declined lists the leased platforms this node has given up for a
	// while because they cannot run here; the other members that run
	// them take them over.
	Declined []ClusterDeclined `json:"declined,omitempty"`
}

// ClusterDeclined is a platform this node declines until Until, and why.
type ClusterDeclined struct {
	Platform string    `json:"platform"`
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason"`
}

// ClusterMember is one live member in ClusterReport.
type ClusterMember struct {
	Node      string    `json:"node"`
	Version   string    `json:"version"`
	Started   time.Time `json:"started"`
	HTTP      string    `json:"http,omitempty"`
	Platforms []string  `json:"platforms,omitempty"`
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
