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
var runSchema = []string{
	`CREATE TABLE IF NOT EXISTS agent_run(
		inbound_id INTEGER PRIMARY KEY,
		run_id TEXT NOT NULL,
		body BLOB NOT NULL,
		started_at INTEGER NOT NULL
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS agent_run_pruned AFTER DELETE ON inbound
		BEGIN DELETE FROM agent_run WHERE inbound_id = old.id; END`,
}

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

// Run returns the backend run recorded for inbound message id; ok is false
// if none was.
func (s *Store) Run(ctx context.Context, id int64) (runID string, body []byte, ok bool, err error) {
	err = s.rdb.QueryRowContext(ctx, `SELECT run_id, body FROM agent_run WHERE inbound_id = ?`, id).Scan(&runID, &body)
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
