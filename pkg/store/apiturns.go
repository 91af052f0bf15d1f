// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/message"
)

// Turns started through the API (POST /v1/turns) are ordinary inbound
// messages; these read them back by their event id and report their state
// with that of their reply parts.

// ErrNoInbound is returned for an inbound message that was never stored or
// was pruned.
var ErrNoInbound = errors.New("store: no such message")

// InboundID returns the id of the inbound message (platform, eventID).
func (s *Store) InboundID(ctx context.Context, platform, eventID string) (int64, error) {
	var id int64
	err := s.rdb.QueryRowContext(ctx, `SELECT id FROM inbound WHERE platform = ? AND event_id = ?`, platform, eventID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNoInbound
	}
	if err != nil {
		return 0, fmt.Errorf("store: read inbound: %w", err)
	}
	return id, nil
}

// TurnRecord is an inbound message with the delivery state of its reply
// parts, in order.
type TurnRecord struct {
	ID      int64
	State   State
	Msg     message.Inbound
	Replies []SendPart
}

// TurnStatus reads inbound message id and its reply parts.
func (s *Store) TurnStatus(ctx context.Context, id int64) (TurnRecord, error) {
	rec := TurnRecord{ID: id}
	var st int
	var body []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT state, msg FROM inbound WHERE id = ?`, id).Scan(&st, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, ErrNoInbound
	}
	if err != nil {
		return rec, fmt.Errorf("store: read inbound: %w", err)
	}
	rec.State = State(st)
	if err := json.Unmarshal(body, &rec.Msg); err != nil {
		return rec, fmt.Errorf("%w: inbound %d: %v", ErrCorrupt, id, err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT state, attempts, COALESCE(last_error, ''), COALESCE(platform_msg_id, '')
		FROM outbox WHERE inbound_id = ? ORDER BY id`, id)
	if err != nil {
		return rec, fmt.Errorf("store: read replies: %w", err)
	}
	rec.Replies, err = scanParts(rows)
	if err != nil {
		return rec, fmt.Errorf("store: read replies: %w", err)
	}
	return rec, nil
}
