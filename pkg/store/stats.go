// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Stats summarises pending work for STATUS= and the admin endpoint.
type Stats struct {
	PendingInbound int
	OldestPending  time.Time // zero if none
	PendingOutbox  int
	FailedOutbox   int
	// OldestOutbox is when the oldest undelivered reply part was stored
	// (zero if none).
	OldestOutbox time.Time
}

// Stats reads the current counts.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), MIN(received_at) FROM inbound WHERE state = 0`).Scan(&st.PendingInbound, &oldest); err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	if oldest.Valid {
		st.OldestPending = time.UnixMilli(oldest.Int64)
	}
	var oldestOut sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 0`).Scan(&st.PendingOutbox, &oldestOut); err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	if oldestOut.Valid {
		st.OldestOutbox = time.UnixMilli(oldestOut.Int64)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 2`).Scan(&st.FailedOutbox); err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}
