// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Messages sent through the send API (POST /v1/messages).
//
// A send is one row of sends, keyed by the caller's idempotency key, and
// its parts are ordinary outbox rows (split at the platform's limit like a
// reply), listed in send_parts: they are delivered, retried and given up
// on exactly like replies, and a send's status is read from them.
var sendSchema = []string{
	`CREATE TABLE IF NOT EXISTS sends(
		id INTEGER PRIMARY KEY,
		idem_key TEXT NOT NULL UNIQUE,
		platform TEXT NOT NULL,
		chat_id TEXT NOT NULL,
		created_at INTEGER NOT NULL
	) STRICT`,
	`CREATE TABLE IF NOT EXISTS send_parts(
		send_id INTEGER NOT NULL,
		part INTEGER NOT NULL,
		outbox_id INTEGER NOT NULL,
		PRIMARY KEY(send_id, part)
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS sends_created ON sends(created_at)`,
}

func init() {
	// Added after the first release, after every earlier table.
	schema = append(schema, sendSchema...)
}

// ErrNoSend is returned by SendStatus for an id that was never stored or
// was pruned.
var ErrNoSend = errors.New("store: no such message")

// AddSend stores a message given to the send API: parts become outbox rows
// of session sessionKey. When key is already stored it returns the existing
// send's id and dup=true, and stores nothing. It returns after the commit,
// with the new outbox records to deliver.
func (s *Store) AddSend(ctx context.Context, key, sessionKey, platform, chatID string, parts []message.Outbound) (id int64, recs []OutboxRecord, dup bool, err error) {
	bodies := make([][]byte, len(parts))
	for i := range parts {
		b, err := json.Marshal(&parts[i])
		if err != nil {
			return 0, nil, false, fmt.Errorf("store: encode message: %w", err)
		}
		bodies[i] = b
	}
	now := ms(s.now())
	// The closure runs on the writer goroutine; r is read only once write
	// returned nil (see AddInbound).
	var r struct {
		id   int64
		dup  bool
		recs []OutboxRecord
	}
	err = s.write(ctx, func(tx wtx) error {
		r.recs = r.recs[:0]
		res, err := tx.Exec(`INSERT INTO sends(idem_key, platform, chat_id, created_at) VALUES(?, ?, ?, ?) ON CONFLICT(idem_key) DO NOTHING`, key, platform, chatID, now)
		if err != nil {
			return fmt.Errorf("store: insert send: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			r.dup = true
			return tx.QueryRow(`SELECT id FROM sends WHERE idem_key = ?`, key).Scan(&r.id)
		}
		r.dup = false
		if r.id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("store: insert send: %w", err)
		}
		for i := range parts {
			res, err := tx.Exec(sqlInsertOutbox, nil, sessionKey, platform, parts[i].IdempotencyKey, bodies[i], now)
			if err != nil {
				return fmt.Errorf("store: insert send part: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("store: insert send part: idempotency key %q already in the outbox", parts[i].IdempotencyKey)
			}
			oid, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("store: insert send part: %w", err)
			}
			if _, err := tx.Exec(`INSERT INTO send_parts(send_id, part, outbox_id) VALUES(?, ?, ?)`, r.id, i+1, oid); err != nil {
				return fmt.Errorf("store: insert send part: %w", err)
			}
			r.recs = append(r.recs, OutboxRecord{ID: oid, SessionKey: sessionKey, Msg: parts[i]})
		}
		return nil
	})
	if err != nil {
		return 0, nil, false, err
	}
	return r.id, r.recs, r.dup, nil
}

// SendPart is the delivery state of one part of a send.
type SendPart struct {
	State         OutboxState
	Attempts      int
	LastError     string
	PlatformMsgID string
}

// SendRecord is a stored send with the state of its parts, in order.
type SendRecord struct {
	ID        int64
	Key       string
	Platform  string
	ChatID    string
	CreatedAt time.Time
	Parts     []SendPart
}

// SendStatus reads send id and its parts.
func (s *Store) SendStatus(ctx context.Context, id int64) (SendRecord, error) {
	rec := SendRecord{ID: id}
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT idem_key, platform, chat_id, created_at FROM sends WHERE id = ?`, id).
		Scan(&rec.Key, &rec.Platform, &rec.ChatID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, ErrNoSend
	}
	if err != nil {
		return rec, fmt.Errorf("store: read send: %w", err)
	}
	rec.CreatedAt = time.UnixMilli(created)
	rows, err := s.rdb.QueryContext(ctx, `SELECT o.state, o.attempts, COALESCE(o.last_error, ''), COALESCE(o.platform_msg_id, '')
		FROM send_parts p JOIN outbox o ON o.id = p.outbox_id WHERE p.send_id = ? ORDER BY p.part`, id)
	if err != nil {
		return rec, fmt.Errorf("store: read send parts: %w", err)
	}
	rec.Parts, err = scanParts(rows)
	if err != nil {
		return rec, fmt.Errorf("store: read send parts: %w", err)
	}
	if len(rec.Parts) == 0 {
		// The parts were pruned with the finished outbox rows.
		return rec, ErrNoSend
	}
	return rec, nil
}

// scanParts reads rows of (state, attempts, last_error, platform_msg_id)
// and closes them.
func scanParts(rows *sql.Rows) ([]SendPart, error) {
	defer rows.Close()
	var out []SendPart
	for rows.Next() {
		var p SendPart
		var st int
		if err := rows.Scan(&st, &p.Attempts, &p.LastError, &p.PlatformMsgID); err != nil {
			return nil, err
		}
		p.State = OutboxState(st)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PruneSends deletes sends older than before whose parts are all gone from
// the outbox (Prune deletes finished outbox rows past the retention).
func (s *Store) PruneSends(ctx context.Context, before time.Time) (int64, error) {
	var r struct{ n int64 } // see AddInbound
	cut := ms(before)
	err := s.write(ctx, func(tx wtx) error {
		if _, err := tx.Exec(`DELETE FROM send_parts WHERE send_id IN (SELECT id FROM sends WHERE created_at < ?)
			AND outbox_id NOT IN (SELECT id FROM outbox)`, cut); err != nil {
			return fmt.Errorf("store: prune send parts: %w", err)
		}
		res, err := tx.Exec(`DELETE FROM sends WHERE created_at < ? AND id NOT IN (SELECT send_id FROM send_parts)`, cut)
		if err != nil {
			return fmt.Errorf("store: prune sends: %w", err)
		}
		r.n, _ = res.RowsAffected()
		return nil
	})
	return r.n, err
}
