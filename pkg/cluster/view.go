// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// seen is the last write of a key this node saw, with the local monotonic
// time it saw it.
type seen struct {
	value   []byte
	at      time.Time
	deleted bool
}

// view follows every key of a TTL bucket through a watcher. A key counts
// as live until TTL after this node last saw it written: the server expires
// it TTL after it stored the write, which was before this node saw it, and
// an expiry sends no event, so the local clock decides. A deleted key is
// gone at once.
type view struct {
	kv       jetstream.KeyValue
	ttl      time.Duration
	stall    time.Duration // no update for this long: start the watcher again
	log      *logrus.Entry
	onChange func(key string, deleted bool)

	mu       sync.Mutex
	keys     map[string]seen
	syncedAt time.Time // when the first watcher delivered every current key
}

func newView(kv jetstream.KeyValue, ttl, stall time.Duration, log *logrus.Entry, onChange func(string, bool)) *view {
	return &view{kv: kv, ttl: ttl, stall: stall, log: log, onChange: onChange, keys: map[string]seen{}}
}

// run watches the bucket until ctx ends, starting the watcher again with
// jittered backoff when it fails, ends, or stalls.
func (v *view) run(ctx context.Context) {
	var stops sync.WaitGroup
	defer stops.Wait()
	var bo backoff
	bo.min, bo.max = 100*time.Millisecond, 5*time.Second
	for ctx.Err() == nil {
		if v.watch(ctx, &stops) {
			bo.reset()
		}
		select {
		case <-ctx.Done():
		case <-time.After(bo.next()):
		}
	}
}

// watch follows one watcher until it ends or delivers nothing for stall;
// it reports whether it delivered the bucket's current keys. A watcher's
// consumer lives on one NATS server: when that server goes away, the
// watcher can stay silent for several seconds before the client notices,
// longer than a member may go unseen. The members and leases a node holds
// itself are rewritten every Renew, so silence means a dead watcher.
func (v *view) watch(ctx context.Context, stops *sync.WaitGroup) bool {
	w, err := v.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			v.log.WithError(err).Warn("cluster: watch bucket failed; retrying")
		}
		return false
	}
	// Stop deletes the consumer with one request, bounded by the client's
	// request timeout; do not hold up the next watcher for it.
	stops.Add(1)
	defer func() {
		go func() { defer stops.Done(); w.Stop() }()
	}()
	synced := false
	stall := time.NewTimer(v.stall)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return synced
		case <-stall.C:
			v.log.WithField("silent", v.stall).Warn("cluster: bucket watcher delivered nothing; watching again")
			return synced
		case e, ok := <-w.Updates():
			if !ok {
				return synced
			}
			stall.Reset(v.stall)
			if e == nil {
				synced = true
				v.mu.Lock()
				if v.syncedAt.IsZero() {
					v.syncedAt = time.Now()
				}
				v.mu.Unlock()
				v.onChange("", false)
				continue
			}
			deleted := e.Operation() != jetstream.KeyValuePut
			v.mu.Lock()
			v.keys[e.Key()] = seen{value: e.Value(), at: time.Now(), deleted: deleted}
			v.mu.Unlock()
			v.onChange(e.Key(), deleted)
		}
	}
}

// synced reports whether a watcher has delivered the bucket's keys once.
func (v *view) synced() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !v.syncedAt.IsZero()
}

// live returns the keys written less than TTL ago and not deleted, with
// their values.
func (v *view) live(now time.Time) map[string][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string][]byte{}
	for k, s := range v.keys {
		if !s.deleted && now.Sub(s.at) < v.ttl {
			out[k] = s.value
		}
	}
	return out
}

// value is the key's value while it is live.
func (v *view) value(key string, now time.Time) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.keys[key]
	if !ok || s.deleted || now.Sub(s.at) >= v.ttl {
		return "", false
	}
	return string(s.value), true
}

// freeSince is when key became free as far as this node knows: deleted,
// or TTL after its last write, or, never seen, when the view first synced.
// ok is false while the key is live or before the view synced.
func (v *view) freeSince(key string, now time.Time) (since time.Time, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, found := v.keys[key]
	switch {
	case !found:
		return v.syncedAt, !v.syncedAt.IsZero()
	case s.deleted:
		return s.at, true
	case now.Sub(s.at) >= v.ttl:
		return s.at.Add(v.ttl), true
	}
	return time.Time{}, false
}

// backoff is capped exponential backoff with jitter: each wait is drawn
// from the upper half of the current step.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }
