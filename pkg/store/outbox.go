// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// HistoryEntry is one message of a session's conversation.
type HistoryEntry struct {
	Role    string
	Content string
}

// OutboxRecord is a stored reply part.
type OutboxRecord struct {
	ID         int64
	InboundID  int64
	SessionKey string
	Attempts   int
	NextAt     time.Time
	Msg        message.Outbound
}

// Finish records the end of a turn (or of a command) in one transaction: the
// inbound message gets state st, replies are appended to the outbox and
// history to the session (at generation gen). Replies whose idempotency key
// is already in the outbox are skipped, so finishing a re-run turn twice
// cannot queue a reply twice. It returns the new outbox records.
// Finishing a message that is already finished (an earlier Finish whose
// caller stopped waiting did commit, and the caller tries again) appends
// no history again.
func (s *Store) Finish(ctx context.Context, inboundID int64, st State, sessionKey string, gen int64, replies []message.Outbound, history []HistoryEntry) ([]OutboxRecord, error) {
	bodies := make([][]byte, len(replies))
	for i := range replies {
		b, err := json.Marshal(&replies[i])
		if err != nil {
			return nil, fmt.Errorf("store: encode reply: %w", err)
		}
		bodies[i] = b
	}
	var out []OutboxRecord
	now := ms(s.now())
	err := s.write(ctx, func(tx wtx) error {
		out = out[:0]
		again := false
		if inboundID != 0 {
			res, err := tx.Exec(sqlFinishPending, int(st), now, inboundID)
			if err != nil {
				return fmt.Errorf("store: finish inbound: %w", err)
			}
			n, _ := res.RowsAffected()
			again = n == 0 && st != Refused
		}
		for i := range replies {
			r := &replies[i]
			res, err := tx.Exec(sqlInsertOutbox,
				nullID(inboundID), sessionKey, r.Platform, r.IdempotencyKey, bodies[i], now)
			if err != nil {
				return fmt.Errorf("store: insert reply: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			id, _ := res.LastInsertId()
			out = append(out, OutboxRecord{ID: id, InboundID: inboundID, SessionKey: sessionKey, Msg: *r})
		}
		if again {
			history = nil
		}
		for _, h := range history {
			if _, err := tx.Exec(sqlInsertHistory,
				sessionKey, gen, h.Role, h.Content, now); err != nil {
				return fmt.Errorf("store: append history: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// PendingOutbox returns every undelivered reply part in creation order.
func (s *Store) PendingOutbox(ctx context.Context) ([]OutboxRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, COALESCE(inbound_id, 0), session_key, attempts, next_at, msg FROM outbox WHERE state = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: query outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRecord
	for rows.Next() {
		var r OutboxRecord
		var next int64
		var body []byte
		if err := rows.Scan(&r.ID, &r.InboundID, &r.SessionKey, &r.Attempts, &next, &body); err != nil {
			return nil, fmt.Errorf("store: scan outbox: %w", err)
		}
		if next > 0 {
			r.NextAt = time.UnixMilli(next)
		}
		if err := json.Unmarshal(body, &r.Msg); err != nil {
			return nil, fmt.Errorf("%w: outbox %d: %v", ErrCorrupt, r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Delivered marks a reply part delivered.
func (s *Store) Delivered(ctx context.Context, id int64, attempts int, platformMsgID string) error {
	now := ms(s.now())
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlDelivered,
			attempts, platformMsgID, now, id)
		if err != nil {
			return fmt.Errorf("store: mark delivered: %w", err)
		}
		return nil
	})
}

// Retry records a failed attempt and when to try again.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlRetry, attempts, ms(next), lastErr, id)
		if err != nil {
			return fmt.Errorf("store: record retry: %w", err)
		}
		return nil
	})
}

// GiveUp marks a reply part failed for good.
func (s *Store) GiveUp(ctx context.Context, id int64, attempts int, lastErr string) error {
	now := ms(s.now())
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlGiveUp, attempts, lastErr, now, id)
		if err != nil {
			return fmt.Errorf("store: give up: %w", err)
		}
		return nil
	})
}
