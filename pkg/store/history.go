// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
)

// History returns up to limit of the latest entries of the session at its
// current generation, oldest first.
func (s *Store) History(ctx context.Context, sessionKey string, gen int64, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.readRows(ctx, sqlReadHistory, sessionKey, gen, limit)
	if err != nil {
		return nil, fmt.Errorf("store: query history: %w", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.Role, &h.Content); err != nil {
			return nil, fmt.Errorf("store: scan history: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Generations returns the generation of every session that was ever reset
// (sessions not listed are at generation 0). The dispatcher keeps them in
// memory: only /new creates one, so the table is small.
func (s *Store) Generations(ctx context.Context) (map[string]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT session_key, generation FROM sessions`)
	if err != nil {
		return nil, fmt.Errorf("store: query generations: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var g int64
		if err := rows.Scan(&k, &g); err != nil {
			return nil, fmt.Errorf("store: scan generations: %w", err)
		}
		out[k] = g
	}
	return out, rows.Err()
}

// ResetSession starts a new generation of the session (/new): earlier
// history is no longer sent to the agent. It returns the new generation.
func (s *Store) ResetSession(ctx context.Context, sessionKey string) (int64, error) {
	var r struct{ gen int64 } // see AddInbound
	err := s.write(ctx, func(tx wtx) error {
		if err := tx.QueryRow(`INSERT INTO sessions(session_key, generation) VALUES(?, 1)
			ON CONFLICT(session_key) DO UPDATE SET generation = generation + 1 RETURNING generation`, sessionKey).Scan(&r.gen); err != nil {
			return fmt.Errorf("store: reset session: %w", err)
		}
		if _, err := tx.Exec(`DELETE FROM history WHERE session_key = ? AND generation < ?`, sessionKey, r.gen); err != nil {
			return fmt.Errorf("store: delete old history: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.gen, nil
}
