// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"time"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Store is what the dispatcher needs from durable state, grouped by what
// the dispatcher does with it. *store.Store (SQLite) implements it; a
// second backend only has to implement these methods with the same
// guarantees (each call is durable when it returns without error).
type Store interface {
	Intake
	Turns
	Outbox
	Runs
	Pairing
	MediaRecords
	Maintenance
}

// MediaRecords records which attachments were fetched (so none is downloaded
// twice) and which stored files are still needed.
type MediaRecords interface {
	RecordMediaFetch(ctx context.Context, inboundID int64, f store.MediaFetch) error
	MediaFetches(ctx context.Context, inboundID int64) (map[int]store.MediaFetch, error)
	ReferencedMedia(ctx context.Context) (map[string]bool, error)
}

// Intake stores inbound messages exactly once per platform event id.
type Intake interface {
	AddInbound(ctx context.Context, sessionKey string, m *message.Inbound, state store.State) (id int64, dup bool, err error)
	AddInboundBudget(ctx context.Context, sessionKey string, m *message.Inbound, b store.Budget) (id int64, dup bool, over *store.OverBudget, err error)
	InboundID(ctx context.Context, platform, eventID string) (int64, error)
	IsPending(ctx context.Context, id int64) (bool, error)
	Pending(ctx context.Context) ([]store.InboundRecord, error)
}

// Turns records the outcome of a turn and the conversation it belongs to.
type Turns interface {
	Finish(ctx context.Context, inboundID int64, st store.State, sessionKey string, gen int64, replies []message.Outbound, history []store.HistoryEntry) ([]store.OutboxRecord, error)
	SetState(ctx context.Context, ids []int64, st store.State) error
	History(ctx context.Context, sessionKey string, gen int64, limit int) ([]store.HistoryEntry, error)
	Generations(ctx context.Context) (map[string]int64, error)
	ResetSession(ctx context.Context, sessionKey string) (int64, error)
}

// Outbox holds replies and sends until the platform confirmed them.
type Outbox interface {
	AddSend(ctx context.Context, key, sessionKey, platform, chatID string, parts []message.Outbound) (id int64, recs []store.OutboxRecord, dup bool, err error)
	PendingOutbox(ctx context.Context) ([]store.OutboxRecord, error)
	AttemptStarted(ctx context.Context, id int64, at time.Time) error
	AttemptFailed(ctx context.Context, id int64) error
	StartedAttempts(ctx context.Context) (map[int64]time.Time, error)
	Delivered(ctx context.Context, id int64, attempts int, platformMsgID string) error
	Retry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error
	GiveUp(ctx context.Context, id int64, attempts int, lastErr string) error
}

// Runs keeps the agent run of a turn in flight and approvals it waits on.
type Runs interface {
	SetRun(ctx context.Context, id int64, runID string, body []byte) error
	Run(ctx context.Context, id int64) (runID string, body []byte, ok bool, err error)
	SetApproval(ctx context.Context, a store.PendingApproval) (time.Time, error)
	Approval(ctx context.Context, sessionKey string) (store.PendingApproval, bool, error)
	DeleteApproval(ctx context.Context, id int64, requestID string) error
	SetRerun(ctx context.Context, id int64, attempt int) error
	Rerun(ctx context.Context, id int64) (int, error)
}

// Pairing holds pairing requests and paired users.
type Pairing interface {
	RequestPairing(ctx context.Context, req store.PairingRequest, ttl time.Duration, maxPending int, newCode func() string) (code string, created bool, err error)
	ApprovePairing(ctx context.Context, platform, code string) (store.PairingRequest, error)
	RevokePairing(ctx context.Context, platform, userID string) (bool, error)
	Pairings(ctx context.Context) ([]store.PairingRequest, []store.PairedUser, error)
}

// Maintenance prunes what retention lets go and reports counts.
type Maintenance interface {
	Prune(ctx context.Context, before time.Time) (int64, error)
	PruneHistory(ctx context.Context, before time.Time, keep int) (int64, error)
	PruneSends(ctx context.Context, before time.Time) (int64, error)
	PruneBudgets(ctx context.Context) error
	Compact(ctx context.Context) (int64, error)
	Stats(ctx context.Context) (store.Stats, error)
}

// The SQLite store is the default backend.
var _ Store = (*store.Store)(nil)
