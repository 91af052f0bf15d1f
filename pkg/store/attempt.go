// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"time"
)

// Send attempts whose outcome is not yet known.
//
// Some platforms (Slack, Telegram) cannot deduplicate a message sent twice.
// If herald dies while such a send is on the wire, the platform may or may
// not show the message, and the outbox record alone cannot tell: it is
// still pending either way. So before sending to such a platform the
// dispatcher records that an attempt started (AttemptStarted), durably,
// and the record stays until the outcome is known:
//
//   - delivered or given up: the outbox row leaves the pending state and a
//     trigger deletes the mark in the same transaction;
//   - failed without reaching the platform: AttemptFailed deletes it;
//   - the outbox row is pruned: a trigger deletes it.
//
// A mark that survives into the next instance (StartedAttempts) means the
// outcome is unknown: the reply must not simply be sent again.
var attemptSchema = []string{
	`CREATE TABLE IF NOT EXISTS outbox_attempt(
		outbox_id INTEGER PRIMARY KEY,
		started_at INTEGER NOT NULL
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS outbox_attempt_settled AFTER UPDATE OF state ON outbox
		WHEN new.state <> 0
		BEGIN DELETE FROM outbox_attempt WHERE outbox_id = new.id; END`,
	`CREATE TRIGGER IF NOT EXISTS outbox_attempt_pruned AFTER DELETE ON outbox
		BEGIN DELETE FROM outbox_attempt WHERE outbox_id = old.id; END`,
}

// AttemptStarted records, and commits before it returns, that a send of
// outbox record id begins at at. A mark already there is kept with its
// time: the earliest attempt whose outcome is unknown bounds where the
// platform's history must be searched.
func (s *Store) AttemptStarted(ctx context.Context, id int64, at time.Time) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`INSERT INTO outbox_attempt(outbox_id, started_at) VALUES(?, ?) ON CONFLICT(outbox_id) DO NOTHING`, id, ms(at)); err != nil {
			return fmt.Errorf("store: record send attempt: %w", err)
		}
		return nil
	})
}

// AttemptFailed removes the mark of outbox record id: the attempt is known
// not to have reached the platform, so sending again is safe.
func (s *Store) AttemptFailed(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`DELETE FROM outbox_attempt WHERE outbox_id = ?`, id); err != nil {
			return fmt.Errorf("store: clear send attempt: %w", err)
		}
		return nil
	})
}

// StartedAttempts returns, for every pending outbox record with a send
// attempt of unknown outcome, when the earliest such attempt started.
func (s *Store) StartedAttempts(ctx context.Context) (map[int64]time.Time, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT a.outbox_id, a.started_at FROM outbox_attempt a
		JOIN outbox o ON o.id = a.outbox_id WHERE o.state = 0`)
	if err != nil {
		return nil, fmt.Errorf("store: query send attempts: %w", err)
	}
	defer rows.Close()
	out := map[int64]time.Time{}
	for rows.Next() {
		var id, at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("store: scan send attempts: %w", err)
		}
		out[id] = time.UnixMilli(at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read send attempts: %w", err)
	}
	return out, nil
}
