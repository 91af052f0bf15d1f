// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// durable is the durable relay's store: the least a gateway that promises
// "nothing lost, nothing twice" must write. A message is inserted (deduplicated
// on its delivery id) and committed before the 202; after its echo reached
// the receiver, one update marks it delivered. Writes from all requests go
// through one goroutine that commits whatever is queued in one transaction
// (group commit), with herald's SQLite settings: WAL, the same synchronous
// level, fdatasync.
type durable struct {
	db   *sql.DB
	ins  *sql.Stmt
	done *sql.Stmt
	reqs chan durableReq
	quit chan struct{}
	exit chan struct{}

	commits, statements atomic.Int64
}

type durableReq struct {
	deliver bool // mark delivered, else insert
	id      string
	body    []byte
	res     chan error
}

func init() { sqlite.Fdatasync(true) }

func openDurable(ctx context.Context, path, syncMode string) (*durable, error) {
	u := url.URL{Scheme: "file", Path: path}
	db, err := sql.Open("sqlite", u.String()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous("+syncMode+")&_pragma=journal_size_limit(16777216)")
	if err != nil {
		return nil, fmt.Errorf("durable: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS msg(id TEXT PRIMARY KEY, body BLOB NOT NULL, delivered INTEGER NOT NULL DEFAULT 0) STRICT, WITHOUT ROWID`); err != nil {
		db.Close()
		return nil, fmt.Errorf("durable: schema: %w", err)
	}
	d := &durable{db: db, reqs: make(chan durableReq, 1024), quit: make(chan struct{}), exit: make(chan struct{})}
	if d.ins, err = db.PrepareContext(ctx, `INSERT INTO msg(id, body) VALUES(?, ?) ON CONFLICT(id) DO NOTHING`); err == nil {
		d.done, err = db.PrepareContext(ctx, `UPDATE msg SET delivered = 1 WHERE id = ?`)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("durable: prepare: %w", err)
	}
	go d.writer()
	return d, nil
}

// write queues a request and waits for its commit.
func (d *durable) write(ctx context.Context, r durableReq) error {
	r.res = make(chan error, 1)
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *durable) writer() {
	defer close(d.exit)
	batch := make([]durableReq, 0, 256)
	for {
		batch = batch[:0]
		select {
		case r := <-d.reqs:
			batch = append(batch, r)
		case <-d.quit:
			return
		}
	collect:
		for len(batch) < cap(batch) {
			select {
			case r := <-d.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		err := d.commit(batch)
		for _, r := range batch {
			r.res <- err
		}
	}
}

func (d *durable) commit(batch []durableReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("durable: begin: %w", err)
	}
	for _, r := range batch {
		if r.deliver {
			_, err = tx.Stmt(d.done).Exec(r.id)
		} else {
			_, err = tx.Stmt(d.ins).Exec(r.id, r.body)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("durable: write: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("durable: commit: %w", err)
	}
	d.commits.Add(1)
	d.statements.Add(int64(len(batch)) + 2) // with BEGIN and COMMIT
	return nil
}

func (d *durable) close() {
	close(d.quit)
	<-d.exit
	d.ins.Close()
	d.done.Close()
	d.db.Close()
}
