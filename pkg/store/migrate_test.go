// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// schemaV1 is what a schema 1 herald created for the inbound messages and
// the outbox, as it was (the outbox's key a UNIQUE column), with the send
// attempt marks and their triggers, which the migration must keep working.
var schemaV1 = []string{
	`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT`,
	`INSERT INTO meta(key, value) VALUES('schema', '1')`,
	`CREATE TABLE inbound(
		id INTEGER PRIMARY KEY,
		platform TEXT NOT NULL,
		event_id TEXT NOT NULL,
		session_key TEXT NOT NULL,
		state INTEGER NOT NULL,
		msg BLOB NOT NULL,
		received_at INTEGER NOT NULL,
		finished_at INTEGER,
		UNIQUE(platform, event_id)
	) STRICT`,
	`CREATE INDEX inbound_pending ON inbound(id) WHERE state = 0`,
	`CREATE TABLE outbox(
		id INTEGER PRIMARY KEY,
		inbound_id INTEGER,
		session_key TEXT NOT NULL,
		platform TEXT NOT NULL,
		idem_key TEXT NOT NULL UNIQUE,
		state INTEGER NOT NULL,
		msg BLOB NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		next_at INTEGER NOT NULL DEFAULT 0,
		last_error TEXT,
		platform_msg_id TEXT,
		created_at INTEGER NOT NULL,
		finished_at INTEGER
	) STRICT`,
	`CREATE INDEX outbox_pending ON outbox(id) WHERE state = 0`,
	`CREATE TABLE outbox_attempt(outbox_id INTEGER PRIMARY KEY, started_at INTEGER NOT NULL) STRICT`,
	`CREATE TRIGGER outbox_attempt_settled AFTER UPDATE OF state ON outbox
		WHEN new.state <> 0
		BEGIN DELETE FROM outbox_attempt WHERE outbox_id = new.id; END`,
	`CREATE TRIGGER outbox_attempt_pruned AFTER DELETE ON outbox
		BEGIN DELETE FROM outbox_attempt WHERE outbox_id = old.id; END`,
	// One message answered and delivered, one answered and waiting, with a
	// send attempt of unknown outcome, and a part of a send.
	`INSERT INTO inbound VALUES(1, 'p', 'e1', 'k', 1, CAST('{"platform":"p","event_id":"e1","chat_id":"c","text":"one"}' AS BLOB), 1000, 2000)`,
	`INSERT INTO inbound VALUES(2, 'p', 'e2', 'k', 1, CAST('{"platform":"p","event_id":"e2","chat_id":"c","text":"two"}' AS BLOB), 1000, 2000)`,
	`INSERT INTO outbox(id, inbound_id, session_key, platform, idem_key, state, msg, attempts, platform_msg_id, created_at, finished_at)
		VALUES(7, 1, 'k', 'p', 'key-1', 1, CAST('{"platform":"p","chat_id":"c","text":"r1","idempotency_key":"key-1"}' AS BLOB), 1, 'pm1', 2000, 3000)`,
	`INSERT INTO outbox(id, inbound_id, session_key, platform, idem_key, state, msg, attempts, next_at, last_error, created_at)
		VALUES(8, 2, 'k', 'p', 'key-2', 0, CAST('{"platform":"p","chat_id":"c","text":"r2","idempotency_key":"key-2"}' AS BLOB), 2, 5000, 'timeout', 2000)`,
	`INSERT INTO outbox(id, inbound_id, session_key, platform, idem_key, state, msg, created_at)
		VALUES(9, NULL, 'k', 'p', 'send-1', 0, CAST('{"platform":"p","chat_id":"c","text":"s1","idempotency_key":"send-1"}' AS BLOB), 2000)`,
	`INSERT INTO outbox_attempt VALUES(8, 4000)`,
}

// TestMigrateOutboxKey: a schema 1 database is upgraded in place at Open:
// every outbox row keeps its id and columns, the pending ones are still
// pending with their attempts and retry time, the send attempt mark is
// still found and still cleared by the delivery (the triggers were created
// again), keys are still deduplicated, the UNIQUE column's index is gone
// and the version reads 2. A second Open changes nothing.
func TestMigrateOutboxKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range schemaV1 {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var version string
	var oldIndexes int
	if err := s.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema'`).Scan(&version); err != nil || version != "2" {
		t.Fatalf("schema version %q (%v), want 2", version, err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'sqlite_autoindex_outbox%' OR name = 'outbox_v2'`).Scan(&oldIndexes); err != nil || oldIndexes != 0 {
		t.Fatalf("%d leftovers of the old outbox (%v)", oldIndexes, err)
	}
	var delivered string
	if err := s.rdb.QueryRowContext(ctx, `SELECT platform_msg_id FROM outbox WHERE id = 7 AND state = 1 AND finished_at = 3000`).Scan(&delivered); err != nil || delivered != "pm1" {
		t.Fatalf("delivered row: %q %v", delivered, err)
	}
	ob, err := s.PendingOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != 2 || ob[0].ID != 8 || ob[0].InboundID != 2 || ob[0].Attempts != 2 || !ob[0].NextAt.Equal(time.UnixMilli(5000)) || ob[0].Msg.Text != "r2" ||
		ob[1].ID != 9 || ob[1].InboundID != 0 || ob[1].Msg.Text != "s1" {
		t.Fatalf("pending outbox after the migration: %+v", ob)
	}
	marks, err := s.StartedAttempts(ctx)
	if err != nil || len(marks) != 1 || !marks[8].Equal(time.UnixMilli(4000)) {
		t.Fatalf("send attempt marks: %v %v", marks, err)
	}

	// Keys already in the outbox are not queued again, for a reply and for
	// a part without an inbound message.
	again := message.Outbound{Platform: "p", ChatID: "c", Text: "r2 again", IdempotencyKey: "key-2"}
	if recs, err := s.Finish(ctx, 2, Done, "k", 0, []message.Outbound{again}, nil); err != nil || len(recs) != 0 {
		t.Fatalf("finish with a stored key queued %d (%v)", len(recs), err)
	}
	send := message.Outbound{Platform: "p", ChatID: "c", Text: "s1 again", IdempotencyKey: "send-1"}
	if recs, err := s.Finish(ctx, 0, Done, "k", 0, []message.Outbound{send}, nil); err != nil || len(recs) != 0 {
		t.Fatalf("notice with a stored key queued %d (%v)", len(recs), err)
	}
	if err := s.Delivered(ctx, 8, 3, "pm2"); err != nil {
		t.Fatal(err)
	}
	if marks, err := s.StartedAttempts(ctx); err != nil || len(marks) != 0 {
		t.Fatalf("the delivery left its attempt mark: %v %v", marks, err)
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_attempt`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("outbox_attempt holds %d rows (%v)", n, err)
	}
	s.Close()

	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("outbox holds %d rows after a second Open (%v), want 3", n, err)
	}
}

// TestNewerSchemaRefused: a database of a later herald (a schema version
// this one does not know) is refused, not changed.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.write(ctx, func(tx sqlTx) error {
		_, err := tx.Exec(`UPDATE meta SET value = '3' WHERE key = 'schema'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a schema 3 database: %v, want ErrCorrupt", err)
	}
}
