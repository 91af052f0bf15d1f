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

// InboundRecord is a stored inbound message.
type InboundRecord struct {
	ID         int64
	SessionKey string
	State      State
	Msg        message.Inbound
}

// AddInbound stores m with the given state unless (m.Platform, m.EventID) is
// already stored, in which case it returns the existing record's id and
// dup=true. It returns after the commit.
func (s *Store) AddInbound(ctx context.Context, sessionKey string, m *message.Inbound, state State) (id int64, dup bool, err error) {
	body, err := json.Marshal(m)
	if err != nil {
		return 0, false, fmt.Errorf("store: encode message: %w", err)
	}
	received := m.ReceivedAt
	if received.IsZero() {
		received = s.now()
	}
	// The closure runs on the writer goroutine and may finish after this
	// call gave up waiting (ctx ended): it writes only to r, which is read
	// only once write returned nil.
	var r struct {
		id  int64
		dup bool
	}
	err = s.write(ctx, func(tx wtx) error {
		r.dup = false // the function may run twice (see commit)
		res, err := tx.Exec(sqlInsertInbound,
			m.Platform, m.EventID, sessionKey, int(state), body, ms(received), s.finishedAt(state))
		if err != nil {
			return fmt.Errorf("store: insert inbound: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			r.dup = true
			return tx.QueryRow(sqlSelectInboundID, m.Platform, m.EventID).Scan(&r.id)
		}
		r.id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return r.id, r.dup, nil
}

// IsPending reports whether inbound message id still waits for its turn.
func (s *Store) IsPending(ctx context.Context, id int64) (bool, error) {
	var st int
	err := s.readRow(ctx, sqlReadIsPending, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read state: %w", err)
	}
	return State(st) == Pending, nil
}

func (s *Store) finishedAt(st State) any {
	if st == Pending {
		return nil
	}
	return ms(s.now())
}

// Pending returns every pending inbound message in arrival order.
func (s *Store) Pending(ctx context.Context) ([]InboundRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, session_key, msg FROM inbound WHERE state = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: query pending: %w", err)
	}
	defer rows.Close()
	var out []InboundRecord
	for rows.Next() {
		var r InboundRecord
		var body []byte
		if err := rows.Scan(&r.ID, &r.SessionKey, &body); err != nil {
			return nil, fmt.Errorf("store: scan pending: %w", err)
		}
		if err := json.Unmarshal(body, &r.Msg); err != nil {
			return nil, fmt.Errorf("%w: inbound %d: %v", ErrCorrupt, r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetState changes the state of inbound messages (dropping queued messages
// on /stop, say).
func (s *Store) SetState(ctx context.Context, ids []int64, st State) error {
	if len(ids) == 0 {
		return nil
	}
	now := ms(s.now())
	return s.write(ctx, func(tx wtx) error {
		for _, id := range ids {
			if _, err := tx.Exec(sqlFinishInbound, int(st), now, id); err != nil {
				return fmt.Errorf("store: set state: %w", err)
			}
		}
		return nil
	})
}
