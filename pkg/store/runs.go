// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Agent runs: the durable link between an inbound message and the backend
// run (Hermes Runs API) that carries its turn.
//
// The dispatcher records the run as soon as the backend accepted it
// (SetRun), before it reads any of the run's events, so an instance that
// stops or dies during the turn leaves the message pending with its run
// recorded; the next instance re-attaches to that run (Run) instead of
// starting the turn again. The row goes when its inbound message is pruned.
var runSchema = append([]string{
	`CREATE TABLE IF NOT EXISTS agent_run(
		inbound_id INTEGER PRIMARY KEY,
		run_id TEXT NOT NULL,
		body BLOB NOT NULL,
		started_at INTEGER NOT NULL
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS agent_run_pruned AFTER DELETE ON inbound
		BEGIN DELETE FROM agent_run WHERE inbound_id = old.id; END`,
	`CREATE TABLE IF NOT EXISTS agent_rerun(
		inbound_id INTEGER PRIMARY KEY,
		attempt INTEGER NOT NULL
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS agent_rerun_pruned AFTER DELETE ON inbound
		BEGIN DELETE FROM agent_rerun WHERE inbound_id = old.id; END`,
}, approvalSchema...)

// SetRun records, and commits before it returns, that the turn of inbound
// message id is carried by backend run runID, created with body. A later
// call (the backend forgot the run and it was created again) replaces it.
func (s *Store) SetRun(ctx context.Context, id int64, runID string, body []byte) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`INSERT INTO agent_run(inbound_id, run_id, body, started_at) VALUES(?, ?, ?, ?)
			ON CONFLICT(inbound_id) DO UPDATE SET run_id = excluded.run_id, body = excluded.body, started_at = excluded.started_at`,
			id, runID, body, ms(time.Now())); err != nil {
			return fmt.Errorf("store: record run: %w", err)
		}
		return nil
	})
}

// SetRerun records, and commits before it returns, that the turn of
// inbound message id runs again as attempt (1 for the first re-run of a run
// the backend interrupted), and forgets the run recorded for the earlier
// attempt in the same transaction: an instance that stops before the new
// run is recorded creates it under the new attempt's idempotency key
// instead of re-attaching to the interrupted run.
func (s *Store) SetRerun(ctx context.Context, id int64, attempt int) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`INSERT INTO agent_rerun(inbound_id, attempt) VALUES(?, ?)
			ON CONFLICT(inbound_id) DO UPDATE SET attempt = excluded.attempt`, id, attempt); err != nil {
			return fmt.Errorf("store: record rerun: %w", err)
		}
		if _, err := tx.Exec(`DELETE FROM agent_run WHERE inbound_id = ?`, id); err != nil {
			return fmt.Errorf("store: forget interrupted run: %w", err)
		}
		return nil
	})
}

// Rerun returns the attempt recorded for inbound message id by SetRerun, 0
// if none was.
func (s *Store) Rerun(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.readRow(ctx, sqlReadRerun, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read rerun: %w", err)
	}
	return n, nil
}

// Run returns the backend run recorded for inbound message id; ok is false
// if none was.
func (s *Store) Run(ctx context.Context, id int64) (runID string, body []byte, ok bool, err error) {
	err = s.readRow(ctx, sqlReadRun, id).Scan(&runID, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("store: read run: %w", err)
	}
	return runID, body, true, nil
}

// RunsInFlight counts pending messages whose turn has a recorded run.
func (s *Store) RunsInFlight(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM agent_run r JOIN inbound i ON i.id = r.inbound_id WHERE i.state = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count runs: %w", err)
	}
	return n, nil
}

// Pending approvals: a run that waits for a human decision, and the prompt
// herald posted for it. The row outlives a restart (the next instance
// answers /approve and keeps the original deadline) and goes when its
// message's turn ends (the trigger below) or when it was answered.
var approvalSchema = []string{
	`CREATE TABLE IF NOT EXISTS agent_approval(
		inbound_id INTEGER PRIMARY KEY,
		session_key TEXT NOT NULL,
		run_id TEXT NOT NULL,
		request_id TEXT NOT NULL,
		asked_at INTEGER NOT NULL
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS agent_approval_session ON agent_approval(session_key)`,
	`CREATE TRIGGER IF NOT EXISTS agent_approval_settled AFTER UPDATE OF state ON inbound
		WHEN new.state <> 0
		BEGIN DELETE FROM agent_approval WHERE inbound_id = new.id; END`,
	`CREATE TRIGGER IF NOT EXISTS agent_approval_pruned AFTER DELETE ON inbound
		BEGIN DELETE FROM agent_approval WHERE inbound_id = old.id; END`,
}

// PendingApproval is a run's approval request herald asked the user about.
type PendingApproval struct {
	InboundID  int64
	SessionKey string
	RunID      string
	RequestID  string
	AskedAt    time.Time
}

// SetApproval records that the turn of inbound message a.InboundID waits
// for approval a, and returns when it was first asked: the same request
// recorded again (after a restart) keeps its original time.
func (s *Store) SetApproval(ctx context.Context, a PendingApproval) (time.Time, error) {
	var r struct{ at int64 } // see AddInbound
	err := s.write(ctx, func(tx wtx) error {
		if err := tx.QueryRow(`INSERT INTO agent_approval(inbound_id, session_key, run_id, request_id, asked_at) VALUES(?, ?, ?, ?, ?)
			ON CONFLICT(inbound_id) DO UPDATE SET
				asked_at = CASE WHEN run_id = excluded.run_id AND request_id = excluded.request_id THEN asked_at ELSE excluded.asked_at END,
				session_key = excluded.session_key, run_id = excluded.run_id, request_id = excluded.request_id
			RETURNING asked_at`,
			a.InboundID, a.SessionKey, a.RunID, a.RequestID, ms(a.AskedAt)).Scan(&r.at); err != nil {
			return fmt.Errorf("store: record approval: %w", err)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(r.at), nil
}

// Approval returns the pending approval of the session, if any.
func (s *Store) Approval(ctx context.Context, sessionKey string) (PendingApproval, bool, error) {
	a := PendingApproval{SessionKey: sessionKey}
	var at int64
	err := s.rdb.QueryRowContext(ctx, `SELECT inbound_id, run_id, request_id, asked_at FROM agent_approval WHERE session_key = ? ORDER BY asked_at DESC LIMIT 1`, sessionKey).
		Scan(&a.InboundID, &a.RunID, &a.RequestID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("store: read approval: %w", err)
	}
	a.AskedAt = time.UnixMilli(at)
	return a, true, nil
}

// DeleteApproval forgets the pending approval of inbound message id if it
// is request requestID (any request if requestID is "").
func (s *Store) DeleteApproval(ctx context.Context, id int64, requestID string) error {
	return s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`DELETE FROM agent_approval WHERE inbound_id = ? AND (? = '' OR request_id = ?)`, id, requestID, requestID); err != nil {
			return fmt.Errorf("store: delete approval: %w", err)
		}
		return nil
	})
}
