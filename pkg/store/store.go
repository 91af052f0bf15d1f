// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"github.com/heraldgw/herald/pkg/message"
)

// State of an inbound message.
type State int

const (
	// Pending: stored, turn not finished. Re-dispatched after a restart.
	Pending State = 0
	// Done: the turn finished; its replies are in the outbox.
	Done State = 1
	// Refused: the sender is not allowed; no turn runs.
	Refused State = 2
	// Dropped: discarded by /stop or /new before its turn ran, or cancelled
	// by them while running.
	Dropped State = 3
	// Interrupted: cancelled by a newer message (busy policy interrupt).
	Interrupted State = 4
	// Failed: the turn failed permanently (the agent rejected it); the user
	// got an error reply.
	Failed State = 5
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Done:
		return "done"
	case Refused:
		return "refused"
	case Dropped:
		return "dropped"
	case Interrupted:
		return "interrupted"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// OutboxState of a reply part.
type OutboxState int

const (
	OutboxPending   OutboxState = 0
	OutboxDelivered OutboxState = 1
	OutboxFailed    OutboxState = 2
)

// Errors returned by Open. herald maps them to documented exit codes.
var (
	// ErrCorrupt: the database file exists but is not a valid herald
	// database (not SQLite, failed integrity check, newer schema).
	ErrCorrupt = errors.New("store: database is corrupt")
	// ErrUnwritable: the database or its directory cannot be written.
	ErrUnwritable = errors.New("store: database is not writable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Options configure Open.
type Options struct {
	// SyncFull makes every commit survive power loss (PRAGMA
	// synchronous=FULL). Without it commits survive a process crash but not
	// power loss.
	SyncFull bool
	// MaxBatch bounds the requests committed in one transaction. Default 256.
	MaxBatch int
	// OnCommit, if set, is called after each commit with the number of
	// requests it held (the group-commit batch size, for metrics) and the
	// number of SQL statements the transaction ran, BEGIN and COMMIT
	// included.
	OnCommit func(requests, statements int)
	// OnHealth, if set, is called from the writer after every commit that
	// failed for a storage reason (disk full, read-only, I/O error) and
	// after the first commit that succeeds again. It must not block.
	OnHealth func(Health)
	// Now is the clock for the times the store records. Default time.Now.
	Now func() time.Time
}

// Store is the SQLite-backed store. It is safe for concurrent use.
type Store struct {
	path string
	wdb  *sql.DB // one connection, used only by the writer goroutine
	rdb  *sql.DB // read-only pool

	prep     map[string]*sql.Stmt // hot statements, prepared on wdb
	reqs     chan *request
	stop     chan struct{}
	done     chan struct{}
	maxBatch int
	linger   bool // sync normal: wait a little for a batch to fill
	onCommit func(requests, statements int)

	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against sends on reqs
	closed    bool

	onHealth func(Health)
	now      func() time.Time
	hmu      sync.Mutex // guards health
	health   Health
}

const schemaVersion = 1

// readIdleConns is how many read connections stay open when idle.
const readIdleConns = 2

// SQLite's page cache per connection (PRAGMA cache_size, negative: KiB).
// SQLite's default is 2 MB per connection; its pages stay allocated after
// a burst and count in herald's RSS. The writer touches a few hot pages
// per message (the ends of the tables and their indexes); readers run a
// few small queries. The operating system's page cache holds the rest.
const (
	writeCacheKiB = -1024
	readCacheKiB  = -256
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT`,
	`CREATE TABLE IF NOT EXISTS inbound(
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
	`CREATE INDEX IF NOT EXISTS inbound_pending ON inbound(id) WHERE state = 0`,
	`CREATE TABLE IF NOT EXISTS outbox(
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
	`CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE state = 0`,
	`CREATE TABLE IF NOT EXISTS history(
		id INTEGER PRIMARY KEY,
		session_key TEXT NOT NULL,
		generation INTEGER NOT NULL,
		role TEXT NOT NULL,
		content TEXT NOT NULL,
		created_at INTEGER NOT NULL
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS history_session ON history(session_key, generation, id)`,
	`CREATE TABLE IF NOT EXISTS sessions(
		session_key TEXT PRIMARY KEY,
		generation INTEGER NOT NULL
	) STRICT`,
}

func init() {
	// Added after the first release; CREATE … IF NOT EXISTS adds them to
	// an existing database.
	schema = append(schema, attemptSchema...)
	schema = append(schema, runSchema...)
	// Indexes of finished rows by finish time, which only the hourly prune
	// read, cost every message two index writes (one when its turn ended,
	// one when its reply was delivered). The prune scans the tables
	// instead; a database created by an earlier herald loses them here.
	schema = append(schema,
		`DROP INDEX IF EXISTS inbound_finished`,
		`DROP INDEX IF EXISTS outbox_finished`)
}

func init() {
	// fdatasync is as durable as fsync for SQLite's files and skips the
	// inode timestamp flush.
	sqlite.Fdatasync(true)
}

// Open opens (creating if needed) the database at path and checks it.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnwritable, err)
	}
	if err := checkWritable(dir, path); err != nil {
		return nil, err
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	sync := "NORMAL"
	if opts.SyncFull {
		sync = "FULL"
	}
	wdsn, err := dsn(path, "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_pragma=foreign_keys(on)&_pragma=journal_size_limit("+fmt.Sprint(walSizeLimit)+")&_pragma=cache_size(-1024)")
	if err != nil {
		return nil, err
	}
	rdsn, err := dsn(path, "_pragma=busy_timeout(10000)&_query_only=1&_pragma=cache_size("+fmt.Sprint(readCacheKiB)+")")
	if err != nil {
		return nil, err
	}
	wdb, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	if err := initSchema(ctx, wdb, path); err != nil {
		wdb.Close()
		return nil, err
	}
	prep := make(map[string]*sql.Stmt, len(hotStatements))
	for _, q := range hotStatements {
		st, err := wdb.PrepareContext(ctx, q)
		if err != nil {
			wdb.Close()
			return nil, fmt.Errorf("store: prepare: %w", err)
		}
		prep[q] = st
	}
	rdb, err := sql.Open("sqlite", rdsn)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(readIdleConns)
	s := &Store{
		path:     path,
		wdb:      wdb,
		rdb:      rdb,
		reqs:     make(chan *request, 1024),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		maxBatch: opts.MaxBatch,
		linger:   !opts.SyncFull,
		onCommit: opts.OnCommit,
		onHealth: opts.OnHealth,
		now:      opts.Now,
		health:   Health{Writable: true, Since: time.Now()},
		prep:     prep,
	}
	go s.writer()
	return s, nil
}

// checkWritable fails early with a clear error when the directory or an
// existing database file is read-only, instead of SQLite's "attempt to write
// a readonly database" at the first message.
func checkWritable(dir, path string) error {
	f, err := os.CreateTemp(dir, ".herald-probe-*")
	if err != nil {
		return fmt.Errorf("%w: cannot create files in %s: %v", ErrUnwritable, dir, unwrapPathError(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory", ErrUnwritable, path)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnwritable, path, unwrapPathError(err))
		}
		f.Close()
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkHeader rejects a non-empty file that is not SQLite before SQLite
// gets to it: SQLite only notices at the first read, with a less helpful
// message.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // missing: created by SQLite
	}
	defer f.Close()
	hdr := make([]byte, 16)
	n, _ := f.Read(hdr)
	if n == 0 {
		return nil
	}
	if n < 16 || string(hdr) != "SQLite format 3\x00" {
		return fmt.Errorf("%w: %s is not an SQLite database (move it away to start with an empty store)", ErrCorrupt, path)
	}
	return nil
}

func initSchema(ctx context.Context, db *sql.DB, path string) error {
	classify := func(what string, err error) error {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "not a database"), strings.Contains(msg, "malformed"), strings.Contains(msg, "corrupt"):
			return fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, path, what, err)
		case strings.Contains(msg, "readonly"), strings.Contains(msg, "read-only"), strings.Contains(msg, "unable to open"), strings.Contains(msg, "permission"), strings.Contains(msg, "disk I/O"):
			return fmt.Errorf("%w: %s: %s: %v", ErrUnwritable, path, what, err)
		}
		return fmt.Errorf("store: %s: %s: %w", path, what, err)
	}
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return classify("integrity check", err)
	}
	if check != "ok" {
		return fmt.Errorf("%w: %s: integrity check: %s", ErrCorrupt, path, check)
	}
	if err := enableIncrementalVacuum(ctx, db); err != nil {
		return classify("enable incremental vacuum", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return classify("begin", err)
	}
	defer tx.Rollback()
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return classify("create schema", err)
		}
	}
	var v sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'schema'").Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return classify("read schema version", err)
	}
	switch {
	case !v.Valid:
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES('schema', ?)", fmt.Sprint(schemaVersion)); err != nil {
			return classify("write schema version", err)
		}
	case v.String != fmt.Sprint(schemaVersion):
		return fmt.Errorf("%w: %s has schema version %s, this herald understands %d", ErrCorrupt, path, v.String, schemaVersion)
	}
	if err := tx.Commit(); err != nil {
		return classify("commit schema", err)
	}
	return nil
}

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
	sqlInsertOutbox    = `INSERT INTO outbox(inbound_id, session_key, platform, idem_key, state, msg, created_at) VALUES(?, ?, ?, ?, 0, ?, ?) ON CONFLICT(idem_key) DO NOTHING`
	sqlInsertHistory   = `INSERT INTO history(session_key, generation, role, content, created_at) VALUES(?, ?, ?, ?, ?)`
	sqlDelivered       = `UPDATE outbox SET state = 1, attempts = ?, platform_msg_id = ?, finished_at = ?, last_error = NULL WHERE id = ?`
	sqlRetry           = `UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`
	sqlGiveUp          = `UPDATE outbox SET state = 2, attempts = ?, last_error = ?, finished_at = ? WHERE id = ?`
)

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

// Close stops the writer after committing what was queued and closes the
// database. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		for _, st := range s.prep {
			st.Close()
		}
		err = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return err
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

func ms(t time.Time) int64 { return t.UnixMilli() }

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
	err := s.rdb.QueryRowContext(ctx, `SELECT state FROM inbound WHERE id = ?`, id).Scan(&st)
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

// HistoryEntry is one message of a session's conversation.
type HistoryEntry struct {
	Role    string
	Content string
}

// OutboxRecord is a stored reply part.
type OutboxRecord struct {
	ID         int64
	InboundID  int64
	SessionKey string
	Attempts   int
	NextAt     time.Time
	Msg        message.Outbound
}

// Finish records the end of a turn (or of a command) in one transaction: the
// inbound message gets state st, replies are appended to the outbox and
// history to the session (at generation gen). Replies whose idempotency key
// is already in the outbox are skipped, so finishing a re-run turn twice
// cannot queue a reply twice. It returns the new outbox records.
// Finishing a message that is already finished (an earlier Finish whose
// caller stopped waiting did commit, and the caller tries again) appends
// no history again.
func (s *Store) Finish(ctx context.Context, inboundID int64, st State, sessionKey string, gen int64, replies []message.Outbound, history []HistoryEntry) ([]OutboxRecord, error) {
	bodies := make([][]byte, len(replies))
	for i := range replies {
		b, err := json.Marshal(&replies[i])
		if err != nil {
			return nil, fmt.Errorf("store: encode reply: %w", err)
		}
		bodies[i] = b
	}
	var out []OutboxRecord
	now := ms(s.now())
	err := s.write(ctx, func(tx wtx) error {
		out = out[:0]
		again := false
		if inboundID != 0 {
			res, err := tx.Exec(sqlFinishPending, int(st), now, inboundID)
			if err != nil {
				return fmt.Errorf("store: finish inbound: %w", err)
			}
			n, _ := res.RowsAffected()
			again = n == 0 && st != Refused
		}
		for i := range replies {
			r := &replies[i]
			res, err := tx.Exec(sqlInsertOutbox,
				nullID(inboundID), sessionKey, r.Platform, r.IdempotencyKey, bodies[i], now)
			if err != nil {
				return fmt.Errorf("store: insert reply: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			id, _ := res.LastInsertId()
			out = append(out, OutboxRecord{ID: id, InboundID: inboundID, SessionKey: sessionKey, Msg: *r})
		}
		if again {
			history = nil
		}
		for _, h := range history {
			if _, err := tx.Exec(sqlInsertHistory,
				sessionKey, gen, h.Role, h.Content, now); err != nil {
				return fmt.Errorf("store: append history: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
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

// History returns up to limit of the latest entries of the session at its
// current generation, oldest first.
func (s *Store) History(ctx context.Context, sessionKey string, gen int64, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT role, content FROM (
		SELECT id, role, content FROM history WHERE session_key = ? AND generation = ? ORDER BY id DESC LIMIT ?
	) ORDER BY id`, sessionKey, gen, limit)
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

// PendingOutbox returns every undelivered reply part in creation order.
func (s *Store) PendingOutbox(ctx context.Context) ([]OutboxRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, COALESCE(inbound_id, 0), session_key, attempts, next_at, msg FROM outbox WHERE state = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: query outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRecord
	for rows.Next() {
		var r OutboxRecord
		var next int64
		var body []byte
		if err := rows.Scan(&r.ID, &r.InboundID, &r.SessionKey, &r.Attempts, &next, &body); err != nil {
			return nil, fmt.Errorf("store: scan outbox: %w", err)
		}
		if next > 0 {
			r.NextAt = time.UnixMilli(next)
		}
		if err := json.Unmarshal(body, &r.Msg); err != nil {
			return nil, fmt.Errorf("%w: outbox %d: %v", ErrCorrupt, r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Delivered marks a reply part delivered.
func (s *Store) Delivered(ctx context.Context, id int64, attempts int, platformMsgID string) error {
	now := ms(s.now())
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlDelivered,
			attempts, platformMsgID, now, id)
		if err != nil {
			return fmt.Errorf("store: mark delivered: %w", err)
		}
		return nil
	})
}

// Retry records a failed attempt and when to try again.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlRetry, attempts, ms(next), lastErr, id)
		if err != nil {
			return fmt.Errorf("store: record retry: %w", err)
		}
		return nil
	})
}

// GiveUp marks a reply part failed for good.
func (s *Store) GiveUp(ctx context.Context, id int64, attempts int, lastErr string) error {
	now := ms(s.now())
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(sqlGiveUp, attempts, lastErr, now, id)
		if err != nil {
			return fmt.Errorf("store: give up: %w", err)
		}
		return nil
	})
}

// Prune deletes finished inbound messages and finished outbox entries older
// than before. Pending work is never pruned. The dedupe window is therefore
// the retention time.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var r struct{ n int64 } // see AddInbound
	cut := ms(before)
	err := s.write(ctx, func(tx wtx) error {
		res, err := tx.Exec(`DELETE FROM outbox WHERE state <> 0 AND finished_at < ?`, cut)
		if err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		a, _ := res.RowsAffected()
		res, err = tx.Exec(`DELETE FROM inbound WHERE state <> 0 AND finished_at < ? AND id NOT IN (SELECT inbound_id FROM outbox WHERE inbound_id IS NOT NULL)`, cut)
		if err != nil {
			return fmt.Errorf("store: prune inbound: %w", err)
		}
		b, _ := res.RowsAffected()
		r.n = a + b
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.n, nil
}

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
