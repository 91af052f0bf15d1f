// SPDX-License-Identifier: Apache-2.0

package adminapi

import (
	"github.com/heraldgw/herald/pkg/store"
)

// SendMessage is the body of POST /v1/messages.
type SendMessage struct {
	Platform       string      `json:"platform"`
	ChatID         string      `json:"chat_id,omitempty"`
	ThreadID       string      `json:"thread_id,omitempty"`
	Text           string      `json:"text"`
	Media          []SendMedia `json:"media,omitempty"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
}

// SendMedia is a file of a sent message: an http(s) URL herald fetches,
// or a path under media.outbound_dirs; the caption goes with the file.
type SendMedia struct {
	URL     string `json:"url,omitempty"`
	Path    string `json:"path,omitempty"`
	Caption string `json:"caption,omitempty"`
}

// SendAccepted is the answer to POST /v1/messages.
type SendAccepted struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// SendStatus is the answer to GET /v1/messages/{id}.
type SendStatus struct {
	ID       string `json:"id"`
	Platform string `json:"platform"`
	ChatID   string `json:"chat_id"`
	// Status is pending (some part is not delivered yet, retries
	// included), sent (every part delivered) or failed (the delivery
	// policy gave up on a part: final).
	Status string `json:"status"`
	// PlatformMessageIDs are the platform's ids of the delivered parts,
	// in order (empty where the platform gives none).
	PlatformMessageIDs []string `json:"platform_message_ids,omitempty"`
	// Reason is why a failed message failed, or the last error of a
	// pending one that is being retried.
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts"`
	Parts    int    `json:"parts"`
}

// Error is the body of every 4xx and 5xx answer of the send API but
// 401.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// TurnMessage is the body of POST /v1/turns.
type TurnMessage struct {
	Platform       string `json:"platform"`
	ChatID         string `json:"chat_id,omitempty"`
	ChatType       string `json:"chat_type,omitempty"`
	ThreadID       string `json:"thread_id,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Text           string `json:"text"`
	IdempotencyKey string `json:"idempotency_key"`
}

// PairingList is the answer to GET /v1/pairing.
type PairingList struct {
	Pending  []store.PairingRequest `json:"pending"`
	Approved []store.PairedUser     `json:"approved"`
}

// PairingApprove is the body of POST /v1/pairing/approve. Notify (default
// true) tells the user they can talk to the agent now.
type PairingApprove struct {
	Platform string `json:"platform"`
	Code     string `json:"code"`
	Notify   *bool  `json:"notify,omitempty"`
}

// PairingRevoke is the body of POST /v1/pairing/revoke.
type PairingRevoke struct {
	Platform string `json:"platform"`
	UserID   string `json:"user_id"`
}

// PairingResult is the answer to approve and revoke.
type PairingResult struct {
	Platform string `json:"platform"`
	UserID   string `json:"user_id"`
	ChatID   string `json:"chat_id,omitempty"`
	Notified bool   `json:"notified,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ReloadAnswer is the answer to POST /reload: OK with the new status line,
// or the reason the configuration was rejected (herald keeps running the
// old one).
type ReloadAnswer struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Status string `json:"status,omitempty"`
}
