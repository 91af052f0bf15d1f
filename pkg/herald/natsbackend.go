// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/store/jsstore"
)

// natsDialTimeout bounds one connection attempt to NATS (every server of
// store.nats.urls); natsOpenTimeout bounds binding the store's bucket.
const (
	natsDialTimeout = 3 * time.Second
	natsOpenTimeout = 10 * time.Second
)

// natsRetry is the backoff between attempts to reach NATS at start.
var natsRetry = adapter.Backoff{Min: time.Second, Max: 15 * time.Second}

// errStoreUnavailable: the JetStream store is not open yet (NATS was not
// reachable). It wraps adapter.ErrUnavailable: intake answers "retry".
var errStoreUnavailable = fmt.Errorf("message store not open yet (NATS unreachable): %w", adapter.ErrUnavailable)

// natsBackend is the JetStream store (store.backend: nats). herald does not
// wait for NATS before it is ready: until the store is open every call
// returns errStoreUnavailable, and connect is retried with backoff (see
// retry). Once open, the NATS client reconnects by itself after a loss;
// calls meanwhile fail with the store's bounded timeout.
type natsBackend struct {
	cfg     config.StoreNATS
	name    string // the client's connection name
	log     *logrus.Entry
	onState func(writable bool) // called when the observed state changes

	st atomic.Pointer[jsstore.Store]

	mu       sync.Mutex
	nc       *nats.Conn
	closed   bool
	lastErr  error     // the last failure to connect or open
	writable bool      // the state observe saw last
	since    time.Time // when it began
}

var _ backend = (*natsBackend)(nil)

func newNATSBackend(cfg config.StoreNATS, name string, log *logrus.Entry, onState func(bool)) *natsBackend {
	return &natsBackend{cfg: cfg, name: name, log: log, onState: onState, writable: true, since: time.Now()}
}

// conn is the NATS connection of the open store; nil before it opened.
func (bk *natsBackend) conn() *nats.Conn {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	if bk.st.Load() == nil {
		return nil
	}
	return bk.nc
}

func (bk *natsBackend) open() (*jsstore.Store, error) {
	if js := bk.st.Load(); js != nil {
		return js, nil
	}
	return nil, errStoreUnavailable
}

// connect makes one bounded attempt to dial NATS and open the store.
func (bk *natsBackend) connect(ctx context.Context) error {
	nc, err := jsstore.Dial(bk.cfg, bk.name, natsDialTimeout, bk.log)
	if err == nil {
		octx, cancel := context.WithTimeout(ctx, natsOpenTimeout)
		var js *jsstore.Store
		js, err = jsstore.Open(octx, nc, jsstore.Options{Prefix: bk.cfg.Prefix, Replicas: bk.cfg.Replicas})
		cancel()
		if err == nil {
			bk.mu.Lock()
			defer bk.mu.Unlock()
			if bk.closed {
				nc.Close()
				return errors.New("herald: nats: store closed while connecting")
			}
			bk.nc, bk.lastErr = nc, nil
			bk.st.Store(js)
			return nil
		}
		nc.Close()
	}
	bk.mu.Lock()
	bk.lastErr = err
	bk.mu.Unlock()
	return err
}

// retry calls connect until it succeeds, with backoff, and returns true;
// false when ctx ended first. Each failure is logged, at warning level the
// first time and then at debug level, so a long outage does not flood the
// journal; STATUS= says it all along.
func (bk *natsBackend) retry(ctx context.Context) bool {
	b := natsRetry
	for i := 0; ; i++ {
		err := bk.connect(ctx)
		if err == nil {
			bk.log.WithField("attempts", i+1).Info("NATS reached: message store open")
			return true
		}
		d := b.Next()
		entry := bk.log.WithError(err).WithField("retry_in", d.Round(time.Millisecond).String())
		if i == 0 {
			entry.Warn("NATS unreachable: herald is up, refuses new messages (platforms redeliver) and retries")
		} else {
			entry.Debug("NATS still unreachable")
		}
		if !adapter.Sleep(ctx, d) {
			return false
		}
	}
}

// observe reads the state (open and connected, or not) and reports a
// change to onState. cause is "" when writable.
func (bk *natsBackend) observe() (writable bool, cause string, since time.Time, lastErr error) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	switch {
	case bk.nc == nil:
		cause, lastErr = "NATS unreachable", bk.lastErr
	case bk.nc.Status() != nats.CONNECTED:
		cause, lastErr = "NATS connection lost, reconnecting", bk.nc.LastError()
	default:
		writable = true
	}
	if writable != bk.writable {
		bk.writable, bk.since = writable, time.Now()
		if bk.onState != nil {
			bk.onState(writable)
		}
	}
	return writable, cause, bk.since, lastErr
}

func (bk *natsBackend) urls() string { return strings.Join(bk.cfg.URLs, ", ") }

func (bk *natsBackend) note() string {
	ok, cause, _, err := bk.observe()
	if ok {
		return ""
	}
	n := "message store cannot be written (" + cause + ": " + bk.urls()
	if err != nil {
		n += ": " + err.Error()
	}
	return n + "; retrying)"
}

func (bk *natsBackend) report() *adminapi.StoreReport {
	ok, cause, since, err := bk.observe()
	r := &adminapi.StoreReport{Backend: "nats", Path: bk.urls(), Writable: ok, Since: since, Cause: cause}
	if err != nil {
		r.Error = err.Error()
	}
	if js := bk.st.Load(); js != nil {
		r.Path = js.Bucket() + " at " + r.Path
	}
	return r
}

// shrinkMemory: the JetStream store keeps no cache of its own.
func (bk *natsBackend) shrinkMemory(context.Context) error { return nil }

// Close closes the store and the NATS connection. A connect in progress
// closes what it opened.
func (bk *natsBackend) Close() error {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	bk.closed = true
	var err error
	if js := bk.st.Load(); js != nil {
		err = js.Close()
	}
	if bk.nc != nil {
		// Drain would wait for pending replies; every write herald
		// waits for has returned by now.
		bk.nc.Close()
	}
	return err
}

// The methods of msgStore: the store's, once it is open.

func (bk *natsBackend) RecordMediaFetch(ctx context.Context, inboundID int64, f store.MediaFetch) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.RecordMediaFetch(ctx, inboundID, f)
}

func (bk *natsBackend) MediaFetches(ctx context.Context, inboundID int64) (map[int]store.MediaFetch, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.MediaFetches(ctx, inboundID)
}

func (bk *natsBackend) ReferencedMedia(ctx context.Context) (map[string]bool, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.ReferencedMedia(ctx)
}

func (bk *natsBackend) AddInbound(ctx context.Context, sessionKey string, m *message.Inbound, state store.State) (id int64, dup bool, err error) {
	js, err := bk.open()
	if err != nil {
		return 0, false, err
	}
	return js.AddInbound(ctx, sessionKey, m, state)
}

func (bk *natsBackend) AddInboundBudget(ctx context.Context, sessionKey string, m *message.Inbound, b store.Budget) (id int64, dup bool, over *store.OverBudget, err error) {
	js, err := bk.open()
	if err != nil {
		return 0, false, nil, err
	}
	return js.AddInboundBudget(ctx, sessionKey, m, b)
}

func (bk *natsBackend) InboundID(ctx context.Context, platform, eventID string) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.InboundID(ctx, platform, eventID)
}

func (bk *natsBackend) IsPending(ctx context.Context, id int64) (bool, error) {
	js, err := bk.open()
	if err != nil {
		return false, err
	}
	return js.IsPending(ctx, id)
}

func (bk *natsBackend) Pending(ctx context.Context) ([]store.InboundRecord, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.Pending(ctx)
}

func (bk *natsBackend) Finish(ctx context.Context, inboundID int64, st store.State, sessionKey string, gen int64, replies []message.Outbound, history []store.HistoryEntry) ([]store.OutboxRecord, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.Finish(ctx, inboundID, st, sessionKey, gen, replies, history)
}

func (bk *natsBackend) SetState(ctx context.Context, ids []int64, st store.State) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.SetState(ctx, ids, st)
}

func (bk *natsBackend) History(ctx context.Context, sessionKey string, gen int64, limit int) ([]store.HistoryEntry, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.History(ctx, sessionKey, gen, limit)
}

func (bk *natsBackend) Generations(ctx context.Context) (map[string]int64, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.Generations(ctx)
}

func (bk *natsBackend) ResetSession(ctx context.Context, sessionKey string) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.ResetSession(ctx, sessionKey)
}

func (bk *natsBackend) AddSend(ctx context.Context, key, sessionKey, platform, chatID string, parts []message.Outbound) (id int64, recs []store.OutboxRecord, dup bool, err error) {
	js, err := bk.open()
	if err != nil {
		return 0, nil, false, err
	}
	return js.AddSend(ctx, key, sessionKey, platform, chatID, parts)
}

func (bk *natsBackend) PendingOutbox(ctx context.Context) ([]store.OutboxRecord, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.PendingOutbox(ctx)
}

func (bk *natsBackend) AttemptStarted(ctx context.Context, id int64, at time.Time) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.AttemptStarted(ctx, id, at)
}

func (bk *natsBackend) AttemptFailed(ctx context.Context, id int64) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.AttemptFailed(ctx, id)
}

func (bk *natsBackend) StartedAttempts(ctx context.Context) (map[int64]time.Time, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.StartedAttempts(ctx)
}

func (bk *natsBackend) Delivered(ctx context.Context, id int64, attempts int, platformMsgID string) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.Delivered(ctx, id, attempts, platformMsgID)
}

func (bk *natsBackend) Retry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.Retry(ctx, id, attempts, next, lastErr)
}

func (bk *natsBackend) GiveUp(ctx context.Context, id int64, attempts int, lastErr string) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.GiveUp(ctx, id, attempts, lastErr)
}

func (bk *natsBackend) SetRun(ctx context.Context, id int64, runID string, body []byte) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.SetRun(ctx, id, runID, body)
}

func (bk *natsBackend) Run(ctx context.Context, id int64) (runID string, body []byte, ok bool, err error) {
	js, err := bk.open()
	if err != nil {
		return "", nil, false, err
	}
	return js.Run(ctx, id)
}

func (bk *natsBackend) SetApproval(ctx context.Context, a store.PendingApproval) (time.Time, error) {
	js, err := bk.open()
	if err != nil {
		return time.Time{}, err
	}
	return js.SetApproval(ctx, a)
}

func (bk *natsBackend) Approval(ctx context.Context, sessionKey string) (store.PendingApproval, bool, error) {
	js, err := bk.open()
	if err != nil {
		return store.PendingApproval{}, false, err
	}
	return js.Approval(ctx, sessionKey)
}

func (bk *natsBackend) DeleteApproval(ctx context.Context, id int64, requestID string) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.DeleteApproval(ctx, id, requestID)
}

func (bk *natsBackend) SetRerun(ctx context.Context, id int64, attempt int) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.SetRerun(ctx, id, attempt)
}

func (bk *natsBackend) Rerun(ctx context.Context, id int64) (int, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.Rerun(ctx, id)
}

func (bk *natsBackend) RequestPairing(ctx context.Context, req store.PairingRequest, ttl time.Duration, maxPending int, newCode func() string) (code string, created bool, err error) {
	js, err := bk.open()
	if err != nil {
		return "", false, err
	}
	return js.RequestPairing(ctx, req, ttl, maxPending, newCode)
}

func (bk *natsBackend) ApprovePairing(ctx context.Context, platform, code string) (store.PairingRequest, error) {
	js, err := bk.open()
	if err != nil {
		return store.PairingRequest{}, err
	}
	return js.ApprovePairing(ctx, platform, code)
}

func (bk *natsBackend) RevokePairing(ctx context.Context, platform, userID string) (bool, error) {
	js, err := bk.open()
	if err != nil {
		return false, err
	}
	return js.RevokePairing(ctx, platform, userID)
}

func (bk *natsBackend) Pairings(ctx context.Context) ([]store.PairingRequest, []store.PairedUser, error) {
	js, err := bk.open()
	if err != nil {
		return nil, nil, err
	}
	return js.Pairings(ctx)
}

func (bk *natsBackend) Prune(ctx context.Context, before time.Time) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.Prune(ctx, before)
}

func (bk *natsBackend) PruneHistory(ctx context.Context, before time.Time, keep int) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.PruneHistory(ctx, before, keep)
}

func (bk *natsBackend) PruneSends(ctx context.Context, before time.Time) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.PruneSends(ctx, before)
}

func (bk *natsBackend) PruneBudgets(ctx context.Context) error {
	js, err := bk.open()
	if err != nil {
		return err
	}
	return js.PruneBudgets(ctx)
}

func (bk *natsBackend) Compact(ctx context.Context) (int64, error) {
	js, err := bk.open()
	if err != nil {
		return 0, err
	}
	return js.Compact(ctx)
}

func (bk *natsBackend) Stats(ctx context.Context) (store.Stats, error) {
	js, err := bk.open()
	if err != nil {
		return store.Stats{}, err
	}
	return js.Stats(ctx)
}

func (bk *natsBackend) SendStatus(ctx context.Context, id int64) (store.SendRecord, error) {
	js, err := bk.open()
	if err != nil {
		return store.SendRecord{}, err
	}
	return js.SendStatus(ctx, id)
}

func (bk *natsBackend) TurnStatus(ctx context.Context, id int64) (store.TurnRecord, error) {
	js, err := bk.open()
	if err != nil {
		return store.TurnRecord{}, err
	}
	return js.TurnStatus(ctx, id)
}

func (bk *natsBackend) TopUsers(ctx context.Context, n int) ([]store.UserUsage, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js.TopUsers(ctx, n)
}

func (bk *natsBackend) ImportPairingFile(ctx context.Context, path string) (added int, imported bool, err error) {
	js, err := bk.open()
	if err != nil {
		return 0, false, err
	}
	return js.ImportPairingFile(ctx, path)
}
