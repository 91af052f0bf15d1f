// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
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
	rprep    map[string]*sql.Stmt // hot reads, prepared on rdb
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

// schemaVersion 2: the outbox's key is unique per inbound message
// (outbox_reply_key, outbox_send_key) instead of in a UNIQUE column; see
// migrateOutboxKey.
const schemaVersion = 2

// outboxColumns is the outbox table's definition after CREATE TABLE name.
const outboxColumns = `(
		id INTEGER PRIMARY KEY,
		inbound_id INTEGER,
		session_key TEXT NOT NULL,
		platform TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		state INTEGER NOT NULL,
		msg BLOB NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		next_at INTEGER NOT NULL DEFAULT 0,
		last_error TEXT,
		platform_msg_id TEXT,
		created_at INTEGER NOT NULL,
		finished_at INTEGER
	) STRICT`

// readConns is how many read connections the store opens at most. They
// stay open while herald is busy: each new connection reads the schema and
// prepares the hot reads again. ShrinkMemory closes them when a burst is
// over.
const readConns = 4

// SQLite's page cache per connection (PRAGMA cache_size, negative: KiB).
// SQLite's default is 2 MB per connection; its pages stay allocated after
// a burst and count in herald's RSS. The writer touches a few hot pages
// per message (the ends of the tables and their indexes); readers run a
// few small queries. The operating system's page cache holds the rest.
const (
	writeCacheKiB = -1024
	readCacheKiB  = -256
)

// schema creates what is missing; its first statement creates meta, which
// holds the schema version.
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
	`CREATE TABLE IF NOT EXISTS outbox` + outboxColumns,
	`CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE state = 0`,
	// A reply's idempotency key is unique among the replies of its
	// inbound message, in an index ordered by the message (its entries
	// are appended where the previous message's are); a part with no
	// inbound message (a send, a notice) has its key unique among those.
	// Every key comes from message.IdempotencyKey over the platform and
	// the message's event id, or over a text no event id has (a send's
	// key, an event id and a notice's name joined by a NUL), so a key
	// cannot be both a reply's and a send's: together the two indexes
	// keep every key once in the outbox, as a UNIQUE key column did, but
	// without writing one page at a random place of a key-ordered index
	// per reply (half of what a message wrote to disk).
	`CREATE UNIQUE INDEX IF NOT EXISTS outbox_reply_key ON outbox(inbound_id, idem_key) WHERE inbound_id IS NOT NULL`,
	`CREATE UNIQUE INDEX IF NOT EXISTS outbox_send_key ON outbox(idem_key) WHERE inbound_id IS NULL`,
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
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	rprep := make(map[string]*sql.Stmt, len(hotReads))
	for _, q := range hotReads {
		st, err := rdb.PrepareContext(ctx, q)
		if err != nil {
			closeStmts(prep)
			closeStmts(rprep)
			rdb.Close()
			wdb.Close()
			return nil, fmt.Errorf("store: prepare: %w", err)
		}
		rprep[q] = st
	}
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
		rprep:    rprep,
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
	if _, err := tx.ExecContext(ctx, schema[0]); err != nil {
		return classify("create schema", err)
	}
	var v sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'schema'").Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return classify("read schema version", err)
	}
	if v.Valid && v.String != "1" && v.String != fmt.Sprint(schemaVersion) {
		return fmt.Errorf("%w: %s has schema version %s, this herald understands %d", ErrCorrupt, path, v.String, schemaVersion)
	}
	if v.String == "1" {
		if err := migrateOutboxKey(ctx, tx); err != nil {
			return classify("migrate outbox to schema 2", err)
		}
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return classify("create schema", err)
		}
	}
	if v.String != fmt.Sprint(schemaVersion) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", fmt.Sprint(schemaVersion)); err != nil {
			return classify("write schema version", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return classify("commit schema", err)
	}
	return nil
}

// migrateOutboxKey upgrades a schema 1 database, whose outbox had its key
// in a UNIQUE column, to schema 2 (see outbox_reply_key). SQLite cannot
// drop a column's UNIQUE, so the table is copied into one with the new
// definition, in the transaction of initSchema: a crash leaves the old
// database as it was. The copy keeps every row and id; the indexes and
// triggers of the table, dropped with it, are created again by the schema
// that follows. It takes about a second per 100 MiB of outbox, once.
func migrateOutboxKey(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`CREATE TABLE outbox_v2` + outboxColumns,
		`INSERT INTO outbox_v2(id, inbound_id, session_key, platform, idem_key, state, msg, attempts, next_at, last_error, platform_msg_id, created_at, finished_at)
			SELECT id, inbound_id, session_key, platform, idem_key, state, msg, attempts, next_at, last_error, platform_msg_id, created_at, finished_at FROM outbox`,
		`DROP TABLE outbox`,
		`ALTER TABLE outbox_v2 RENAME TO outbox`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
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
		closeStmts(s.prep)
		closeStmts(s.rprep)
		err = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return err
}

func closeStmts(m map[string]*sql.Stmt) {
	for _, st := range m {
		st.Close()
	}
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

func ms(t time.Time) int64 { return t.UnixMilli() }
