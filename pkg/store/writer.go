// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// request is one write for the group-commit writer.
type request struct {
	fn   func(tx wtx) error
	done chan error
}

// wtx is the writer's transaction as request functions see it: statements
// herald runs all the time are prepared once on the writer's connection
// (parsing them again for every message was a sixth of herald's CPU under
// load); anything else is executed as text.
type wtx struct {
	tx   *sql.Tx
	prep map[string]*sql.Stmt
	n    *int // statements run
}

func (w wtx) Exec(query string, args ...any) (sql.Result, error) {
	*w.n++
	if st := w.prep[query]; st != nil {
		return w.tx.Stmt(st).Exec(args...)
	}
	return w.tx.Exec(query, args...)
}

func (w wtx) QueryRow(query string, args ...any) *sql.Row {
	*w.n++
	if st := w.prep[query]; st != nil {
		return w.tx.Stmt(st).QueryRow(args...)
	}
	return w.tx.QueryRow(query, args...)
}

// SQL of the hot statements, prepared at Open.
const (
	sqlSavepoint       = `SAVEPOINT req`
	sqlRollbackTo      = `ROLLBACK TO req`
	sqlRelease         = `RELEASE req`
	sqlInsertInbound   = `INSERT INTO inbound(platform, event_id, session_key, state, msg, received_at, finished_at) VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(platform, event_id) DO NOTHING`
	sqlSelectInboundID = `SELECT id FROM inbound WHERE platform = ? AND event_id = ?`
	sqlFinishInbound   = `UPDATE inbound SET state = ?, finished_at = ? WHERE id = ?`
	sqlFinishPending   = `UPDATE inbound SET state = ?, finished_at = ? WHERE id = ? AND state = 0`
	sqlInsertOutbox    = `INSERT INTO outbox(inbound_id, session_key, platform, idem_key, state, msg, created_at) VALUES(?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING`
	sqlInsertHistory   = `INSERT INTO history(session_key, generation, role, content, created_at) VALUES(?, ?, ?, ?, ?)`
	sqlDelivered       = `UPDATE outbox SET state = 1, attempts = ?, platform_msg_id = ?, finished_at = ?, last_error = NULL WHERE id = ?`
	sqlRetry           = `UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`
	sqlGiveUp          = `UPDATE outbox SET state = 2, attempts = ?, last_error = ?, finished_at = ? WHERE id = ?`
)

// SQL of the hot reads (a turn's recorded run and re-run attempt, a
// session's history, whether a redelivered message is still pending),
// prepared at Open on the read pool. A statement given as text is parsed
// again at every call: for the two reads of every turn that was a third
// of the CPU of BenchmarkPipeline.
const (
	sqlReadRerun     = `SELECT attempt FROM agent_rerun WHERE inbound_id = ?`
	sqlReadRun       = `SELECT run_id, body FROM agent_run WHERE inbound_id = ?`
	sqlReadIsPending = `SELECT state FROM inbound WHERE id = ?`
	sqlReadHistory   = `SELECT role, content FROM (
		SELECT id, role, content FROM history WHERE session_key = ? AND generation = ? ORDER BY id DESC LIMIT ?
	) ORDER BY id`
)

var hotReads = []string{sqlReadRerun, sqlReadRun, sqlReadIsPending, sqlReadHistory}

// readRow runs a query of one row on the read pool, prepared if it is a
// hot read.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.rprep[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.rdb.QueryRowContext(ctx, query, args...)
}

// readRows runs a query on the read pool, prepared if it is a hot read.
func (s *Store) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.rprep[query]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.rdb.QueryContext(ctx, query, args...)
}

var hotStatements = []string{
	sqlSavepoint, sqlRollbackTo, sqlRelease, sqlInsertInbound, sqlSelectInboundID,
	sqlFinishInbound, sqlFinishPending, sqlInsertOutbox, sqlInsertHistory, sqlDelivered, sqlRetry, sqlGiveUp,
}

// write runs fn in a transaction shared with other concurrent writes and
// returns once that transaction is committed. fn must not block on anything
// but the database.
func (s *Store) write(ctx context.Context, fn func(tx wtx) error) error {
	r := &request{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued the request will be committed or failed; waiting for it
	// even after ctx ends would be safer for callers that must know, but
	// an adapter whose ctx ended will not acknowledge anyway.
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// With synchronous=FULL a commit waits for the device flush, and the
// requests that arrive meanwhile make the next batch large by themselves.
// With NORMAL a commit is quick, so under load each batch would hold the
// few requests that came during the previous one, and herald would run
// several times as many commits (each rewriting the same pages of the
// write-ahead log) as with FULL: the setting meant to be faster was the
// slower. So with NORMAL, when the previous batch showed concurrent
// writers, the writer waits for the batch to grow as large as the previous
// one, for lingerMax at most (less than a device flush takes, which is
// what FULL waits). A lone writer (the previous batch held one request) is
// not kept waiting.
const lingerMax = 2 * time.Millisecond

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	last := 0
	for {
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.stop:
			// Drain what was queued before Close, then exit.
			for {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					if len(batch) == s.maxBatch {
						s.commit(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						s.commit(batch)
					}
					return
				}
			}
		}
	collect:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		if s.linger && last > 1 {
			s.fill(&batch, min(last, s.maxBatch), timer)
		}
		last = len(batch)
		s.commit(batch)
	}
}

// fill adds requests to batch until it holds target, lingerMax has
// passed, or the store closes.
func (s *Store) fill(batch *[]*request, target int, timer *time.Timer) {
	if len(*batch) >= target {
		return
	}
	timer.Reset(lingerMax)
	defer timer.Stop()
	for len(*batch) < target {
		select {
		case r := <-s.reqs:
			*batch = append(*batch, r)
		case <-timer.C:
			return
		case <-s.stop:
			return
		}
	}
}

// commit runs a batch of requests in one transaction. Most batches have no
// failing request, so the requests first run back to back without a
// savepoint each (a savepoint and its release are two statements, more
// than most requests run themselves). If one fails, the whole transaction
// is rolled back, nothing of it having been committed, and the batch runs
// again with every request in a savepoint of its own, so that a failing
// request takes only its own writes with it. Request functions therefore
// must be safe to run twice (they only write to the database and to
// variables they set afresh).
func (s *Store) commit(batch []*request) {
	// The writer's context is independent of callers': a queued request is
	// committed even if its caller stopped waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.commitFast(ctx, batch) {
		return
	}
	s.commitIsolated(ctx, batch)
}

// commitFast runs batch without savepoints. It returns false, having
// rolled back and answered no request, if a request of a batch of several
// failed.
func (s *Store) commitFast(ctx context.Context, batch []*request) bool {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		s.failBatch(batch, fmt.Errorf("store: begin: %w", err))
		return true
	}
	w := wtx{tx: tx, prep: s.prep, n: new(int)}
	for _, r := range batch {
		if err := r.fn(w); err != nil {
			tx.Rollback()
			if len(batch) > 1 {
				return false
			}
			// A batch of one: the rollback undid exactly the request.
			if Cause(err) != "" {
				s.noteCommit(err)
			}
			r.done <- err
			return true
		}
	}
	if err := tx.Commit(); err != nil {
		s.failBatch(batch, fmt.Errorf("store: commit: %w", err))
		return true
	}
	s.committed(batch, nil, *w.n)
	return true
}

// commitIsolated runs batch with each request in a savepoint.
func (s *Store) commitIsolated(ctx context.Context, batch []*request) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		s.failBatch(batch, fmt.Errorf("store: begin: %w", err))
		return
	}
	results := make([]error, len(batch))
	w := wtx{tx: tx, prep: s.prep, n: new(int)}
	for i, r := range batch {
		if _, err := w.Exec(sqlSavepoint); err != nil {
			tx.Rollback()
			s.failBatch(batch, fmt.Errorf("store: savepoint: %w", err))
			return
		}
		if err := r.fn(w); err != nil {
			results[i] = err
			if _, rerr := w.Exec(sqlRollbackTo); rerr != nil {
				tx.Rollback()
				if Cause(err) != "" {
					// SQLite rolled the whole transaction back itself
					// (disk full, I/O error), savepoint included, so
					// ROLLBACK TO fails with "no such savepoint": the
					// request's own error is the one that explains.
					s.failBatch(batch, err)
				} else {
					s.failBatch(batch, fmt.Errorf("%w (then rollback to savepoint: %v)", err, rerr))
				}
				return
			}
		}
		if _, err := w.Exec(sqlRelease); err != nil {
			tx.Rollback()
			s.failBatch(batch, fmt.Errorf("store: release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		s.failBatch(batch, fmt.Errorf("store: commit: %w", err))
		return
	}
	s.committed(batch, results, *w.n)
}

// failBatch answers every request of a batch that was not committed.
func (s *Store) failBatch(batch []*request, err error) {
	if Cause(err) != "" {
		s.noteCommit(err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// committed answers the requests of a committed batch; results, if not
// nil, holds the error of each request (rolled back to its savepoint).
// statements is what the requests ran (BEGIN and COMMIT come on top).
func (s *Store) committed(batch []*request, results []error, statements int) {
	if s.onCommit != nil {
		s.onCommit(len(batch), statements+2)
	}
	var storageErr error
	for _, err := range results {
		if Cause(err) != "" {
			storageErr = err
		}
	}
	s.noteCommit(storageErr)
	for i, r := range batch {
		var err error
		if results != nil {
			err = results[i]
		}
		r.done <- err
	}
}
