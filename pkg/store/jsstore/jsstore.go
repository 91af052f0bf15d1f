// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldgw/herald/pkg/store"
)

// Options configure Open.
type Options struct {
	// Prefix starts the bucket's name, so that several herald clusters
	// can share one NATS (letters, digits, '-' and '_'). Default "herald".
	Prefix string
	// Replicas of the bucket's stream. Default 3. It applies when the
	// bucket is created; an existing bucket keeps its replicas.
	Replicas int
	// Timeout bounds each call whose context has no deadline. Default 10s.
	Timeout time.Duration
	// Now is the clock for the times the store records. Default time.Now.
	Now func() time.Time
	// MarkerAge is how old a delete marker must be for Compact to purge
	// it. Default 1h.
	MarkerAge time.Duration
}

// Store is the JetStream-backed store. It is safe for concurrent use, by
// several goroutines and by several herald nodes sharing the bucket.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	stream  jetstream.Stream
	bucket  string
	subj    string // "$KV.<bucket>."
	timeout time.Duration
	now     func() time.Time
	markers time.Duration // see Options.MarkerAge

	inflight chan struct{} // a token per atomic batch in flight

	hmu  sync.Mutex
	hseq int64 // last history sequence handed out

	closeOnce sync.Once
	closed    chan struct{}
}

// ErrClosed is returned by calls on a closed store.
var ErrClosed = store.ErrClosed

// errConflict: a revision check failed (another writer changed a key).
var errConflict = errors.New("jsstore: revision conflict")

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// maxTries bounds how often an operation re-reads and retries after a
// revision conflict.
const maxTries = 20

// Open binds to (creating if needed) the store's bucket on nc. nc stays
// the caller's: Close does not close it.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = "herald"
	}
	if !prefixRE.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("jsstore: prefix %q: only letters, digits, '-' and '_'", opts.Prefix)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MarkerAge <= 0 {
		opts.MarkerAge = time.Hour
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jsstore: jetstream: %w", err)
	}
	s := &Store{nc: nc, js: js, bucket: opts.Prefix + "_store", timeout: opts.Timeout, now: opts.Now, markers: opts.MarkerAge,
		inflight: make(chan struct{}, maxInflight), closed: make(chan struct{})}
	s.subj = "$KV." + s.bucket + "."
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	// A replica that missed its heartbeats (a busy host) is "offline" to
	// the meta leader for a moment, and placing an R3 bucket then fails
	// with "no suitable peers": a temporary state, retried until ctx ends.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err = s.ensureBucket(ctx, opts.Replicas)
		if err == nil {
			return s, nil
		}
		if !noPeers(err) {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// errCodeNoPeers is JetStream's error code for "no suitable peers for
// placement" (the client names no constant for it).
const errCodeNoPeers jetstream.ErrorCode = 10005

// noPeers reports whether err is JetStream's "no suitable peers for
// placement".
func noPeers(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeNoPeers
}

// ensureBucket creates the bucket, or binds to it, and makes sure its
// stream allows atomic batch publishes.
func (s *Store) ensureBucket(ctx context.Context, replicas int) error {
	kv, err := s.js.KeyValue(ctx, s.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.bucket,
			Description: "herald durable state",
			History:     1,
			Replicas:    replicas,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, s.bucket)
		}
	}
	if err != nil {
		return fmt.Errorf("jsstore: bucket %s: %w", s.bucket, err)
	}
	s.kv = kv
	st, err := s.js.Stream(ctx, "KV_"+s.bucket)
	if err != nil {
		return fmt.Errorf("jsstore: stream of %s: %w", s.bucket, err)
	}
	// Atomic batches are what makes a write of several keys atomic.
	// Direct gets are off: any replica answers those, one that lags
	// behind would answer with an older value; without them the stream
	// leader answers every read, after every write it acknowledged.
	if cfg := st.CachedInfo().Config; !cfg.AllowAtomicPublish || cfg.AllowDirect {
		cfg.AllowAtomicPublish, cfg.AllowDirect = true, false
		if st, err = s.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("jsstore: configure stream of %s: %w", s.bucket, err)
		}
	}
	s.stream = st
	return nil
}

// Close marks the store closed. Calls after it return ErrClosed. The
// NATS connection stays open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Bucket is the name of the key-value bucket holding the state.
func (s *Store) Bucket() string { return s.bucket }

// bounded gives ctx the store's timeout unless it has a deadline.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// begin checks the store is open and bounds ctx.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	select {
	case <-s.closed:
		return nil, nil, ErrClosed
	default:
	}
	c, cancel := s.bounded(ctx)
	return c, cancel, nil
}

// Keys. Every variable part is encoded as one token (tok), so that any
// string (platform, event id, session key, idempotency key) is a valid
// part of a key.

func tok(v string) string { return "x" + base64.RawURLEncoding.EncodeToString([]byte(v)) }

func untok(t string) (string, error) {
	if !strings.HasPrefix(t, "x") {
		return "", fmt.Errorf("jsstore: bad key token %q", t)
	}
	b, err := base64.RawURLEncoding.DecodeString(t[1:])
	if err != nil {
		return "", fmt.Errorf("jsstore: bad key token %q: %w", t, err)
	}
	return string(b), nil
}

func num(n int64) string { return strconv.FormatInt(n, 10) }

// op is one message of a write: a value for key, or a delete marker. When
// expect is set the write succeeds only if the key's last revision is
// *expect (0: the key never existed or was purged).
type op struct {
	key    string
	val    []byte
	del    bool
	expect *uint64
}

func put(key string, val []byte) op { return op{key: key, val: val} }
func del(key string) op             { return op{key: key, del: true} }
func putAt(key string, val []byte, rev uint64) op {
	return op{key: key, val: val, expect: &rev}
}
func delAt(key string, rev uint64) op { return op{key: key, del: true, expect: &rev} }

// pubAck is JetStream's answer to a publish or to a batch commit.
type pubAck struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Count     int    `json:"count"`
}

// Error codes of a failed revision check (the second on replicated
// streams).
const (
	errCodeWrongLastSeq  = 10071
	errCodeWrongLastSeq2 = 10164
	// The same Nats-Msg-Id is being stored by another publish right now.
	errCodeMsgIDInProcess = 10158
	// An atomic batch carries a Nats-Msg-Id stored within the window.
	errCodeBatchDuplicate = 10201
	// The server did not get the whole batch (it refused an earlier
	// message, say, when too many batches were in flight): nothing of it
	// is stored.
	errCodeBatchIncomplete = 10176
	errCodeBatchInflight   = 10211
)

// errNotStored: the write was refused as a whole, before anything of it
// was stored; sending it again is safe.
var errNotStored = errors.New("jsstore: write not stored")

// maxInflight bounds the atomic batches one store has in flight: the
// server refuses batches beyond 50 per stream.
const maxInflight = 16

// commit writes ops: one message, or an atomic batch of several that the
// server stores all or none of. It returns the stream sequence of the last
// message (the batch's commit); the messages of a batch have consecutive
// sequences. msgID, if set, goes on the last message as Nats-Msg-Id. It
// returns after JetStream acknowledged the write: with replicas, after a
// quorum stored it.
//
// A write that found no stream to take it (its leader is being elected,
// say), or that the server refused as a whole (too many batches in flight
// from all nodes), stored nothing: it is sent again, a new batch, until
// ctx ends. At most maxInflight batches of this store are in flight.
func (s *Store) commit(ctx context.Context, msgID string, ops ...op) (uint64, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	if len(ops) > 1 {
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
		case <-ctx.Done():
			return 0, fmt.Errorf("jsstore: wait to publish: %w", ctx.Err())
		}
	}
	for try := 0; ; try++ {
		seq, err := s.commitOnce(ctx, msgID, ops)
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, errNotStored) {
			return seq, err
		}
		if perr := pause(ctx, min(try, 20)); perr != nil {
			return 0, err
		}
	}
}

func (s *Store) commitOnce(ctx context.Context, msgID string, ops []op) (uint64, error) {
	var batch string
	if len(ops) > 1 {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("jsstore: batch id: %w", err)
		}
		batch = hex.EncodeToString(b[:])
	}
	for i, o := range ops {
		m := nats.NewMsg(s.subj + o.key)
		m.Data = o.val
		if o.del {
			m.Header.Set("KV-Operation", "DEL")
		}
		if o.expect != nil {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(*o.expect, 10))
		}
		last := i == len(ops)-1
		if last && msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if batch != "" {
			m.Header.Set("Nats-Batch-Id", batch)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		}
		if !last {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("jsstore: publish: %w", err)
			}
			continue
		}
		if batch != "" {
			m.Header.Set("Nats-Batch-Commit", "1")
		}
		resp, err := s.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("jsstore: publish %s: %w", o.key, err)
		}
		var ack pubAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("jsstore: publish %s: bad acknowledgement: %w", o.key, err)
		}
		if ack.Error != nil {
			if ack.Error.ErrCode == errCodeWrongLastSeq || ack.Error.ErrCode == errCodeWrongLastSeq2 {
				return 0, fmt.Errorf("%w: %s", errConflict, ack.Error.Description)
			}
			if ack.Error.ErrCode == errCodeBatchIncomplete || ack.Error.ErrCode == errCodeBatchInflight {
				return 0, fmt.Errorf("%w: %s", errNotStored, ack.Error.Description)
			}
			if ack.Error.ErrCode == errCodeMsgIDInProcess || ack.Error.ErrCode == errCodeBatchDuplicate {
				return 0, fmt.Errorf("%w: %s", errDuplicate, ack.Error.Description)
			}
			return 0, fmt.Errorf("jsstore: publish %s: %s (%d)", o.key, ack.Error.Description, ack.Error.ErrCode)
		}
		if ack.Duplicate {
			return ack.Seq, errDuplicate
		}
		return ack.Seq, nil
	}
	panic("unreachable")
}

// errDuplicate: the publish's Nats-Msg-Id was seen within the duplicate
// window (the sequence returned is the earlier message's), or another
// publish with it is being stored right now (no sequence).
var errDuplicate = errors.New("jsstore: duplicate message id")

// get reads key. ok is false when it is absent or deleted; rev is the
// revision to expect when writing it next (0 if it never existed).
func (s *Store) get(ctx context.Context, key string) (val []byte, rev uint64, ok bool, err error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, s.subj+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("jsstore: read %s: %w", key, err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, m.Sequence, false, nil
	}
	return m.Data, m.Sequence, true, nil
}

// getJSON reads key into v.
func (s *Store) getJSON(ctx context.Context, key string, v any) (rev uint64, ok bool, err error) {
	b, rev, ok, err := s.get(ctx, key)
	if err != nil || !ok {
		return rev, ok, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return rev, false, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, key, err)
	}
	return rev, true, nil
}

// bySeq reads the message stored at sequence seq: the key it was written
// to and its value. ok is false when it is gone (the key was written again
// or deleted since).
func (s *Store) bySeq(ctx context.Context, seq int64) (key string, val []byte, ok bool, err error) {
	if seq <= 0 {
		return "", nil, false, nil
	}
	m, err := s.stream.GetMsg(ctx, uint64(seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("jsstore: read sequence %d: %w", seq, err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return "", nil, false, nil
	}
	return strings.TrimPrefix(m.Subject, s.subj), m.Data, true, nil
}

// entry is one key and value from scan.
type entry struct {
	key     string
	val     []byte
	rev     uint64
	created time.Time
	deleted bool // a delete marker (only from scanMarkers)
}

// syncKey is written by every scan before it reads (see scan).
const syncKey = "sync"

// scan returns every live key matching filter (a key pattern with * and
// >), with its value, in no particular order, as of a moment after the
// call began: it includes every write acknowledged before it.
//
// The keys are read by an ordered consumer, which the server may place
// on any replica of the stream, one that lags behind the leader among
// them. So scan first writes syncKey (acknowledged at sequence b) and
// reads it along with the keys: the consumer delivers in stream order, so
// once it delivered syncKey at b or later it delivered every write before
// b. Deletes and updates that arrive meanwhile are applied in order.
func (s *Store) scan(ctx context.Context, filter string) ([]entry, error) {
	return s.scanAll(ctx, filter, false)
}

// scanMarkers is scan that returns the keys whose last write is a
// delete marker, and only those.
func (s *Store) scanMarkers(ctx context.Context, filter string) ([]entry, error) {
	return s.scanAll(ctx, filter, true)
}

func (s *Store) scanAll(ctx context.Context, filter string, markers bool) ([]entry, error) {
	b, err := s.commit(ctx, "", put(syncKey, nil))
	if err != nil {
		return nil, err
	}
	filters := []string{filter, syncKey}
	if filter == ">" || filter == "*" {
		filters = filters[:1] // it covers syncKey; filters must not overlap
	}
	w, err := s.kv.WatchFiltered(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("jsstore: scan %s: %w", filter, err)
	}
	defer w.Stop()
	latest := map[string]entry{}
	initial, synced := true, false
	for initial || !synced {
		select {
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, fmt.Errorf("jsstore: scan %s: watcher stopped", filter)
			case e == nil:
				initial = false
			case e.Key() == syncKey:
				synced = synced || e.Revision() >= b
			default:
				del := e.Operation() != jetstream.KeyValuePut
				latest[e.Key()] = entry{key: e.Key(), val: e.Value(), rev: e.Revision(), created: e.Created(), deleted: del}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("jsstore: scan %s: %w", filter, ctx.Err())
		}
	}
	out := make([]entry, 0, len(latest))
	for _, e := range latest {
		if e.deleted == markers {
			out = append(out, e)
		}
	}
	return out, nil
}

// pause waits a little before trying again after try failed, or until
// ctx ends.
func pause(ctx context.Context, try int) error {
	t := time.NewTimer(time.Duration(try+1) * 5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the store's own record types are encoded here; they
		// always encode.
		panic(fmt.Sprintf("jsstore: encode %T: %v", v, err))
	}
	return b
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}
