// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

type counters struct{ acquired, lost, released atomic.Int64 }

func (c *counters) LeaseAcquired(string) { c.acquired.Add(1) }
func (c *counters) LeaseLost(string)     { c.lost.Add(1) }
func (c *counters) LeaseReleased(string) { c.released.Add(1) }

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func bucket(t *testing.T, js jetstream.JetStream, ttl time.Duration, replicas int) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := LeaseBucket(ctx, js, "leases", ttl, replicas)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastLease is the lease timing of the lease tests: a 2 s TTL.
var fastLease = LeaseConfig{TTL: 2 * time.Second, Renew: 200 * time.Millisecond, StopTimeout: 500 * time.Millisecond, Drift: 200 * time.Millisecond}

// fastLeaseBucket starts a NATS server and returns a bucket of
// fastLease's TTL on it, and fastLease.
func fastLeaseBucket(t *testing.T) (jetstream.KeyValue, LeaseConfig) {
	t.Helper()
	s := natstest.StartServer(t)
	return bucket(t, connect(t, s.ClientURL()), fastLease.TTL, 1), fastLease
}

// TestLeaseSetValue: a value set while the lease is held is stored by the
// next renewal, and Release deletes the key even when it holds the value
// of a renewal sent before the last SetValue.
func TestLeaseSetValue(t *testing.T) {
	s := natstest.StartServer(t)
	js := connect(t, s.ClientURL())
	// Renew is 1 s: after a renewal, the test's writes are done long
	// before the next.
	cfg := LeaseConfig{TTL: 10 * time.Second, Renew: time.Second, StopTimeout: time.Second, Drift: time.Second}
	kv := bucket(t, js, cfg.TTL, 1)
	ctx := context.Background()
	var m counters
	l, err := newLease(kv, KindMember, "node-a", "node-a", []byte("one"), cfg, func(context.Context) {}, &m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	l.SetValue([]byte("two"))
	waitFor(t, "the renewal to store the new value", func() bool {
		e, err := kv.Get(ctx, "node-a")
		return err == nil && string(e.Value()) == "two"
	})
	// A renewal carrying "two" that Release cancels may be stored all the
	// same, after another SetValue: Release still deletes the key.
	e, err := kv.Get(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	l.SetValue([]byte("three"))
	if _, err := kv.Update(ctx, "node-a", []byte("two"), e.Revision()); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "node-a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after Release: %v, want ErrKeyNotFound", err)
	}
}

func TestLeaseAcquireRenewRelease(t *testing.T) {
	kv, cfg := fastLeaseBucket(t)
	ctx := context.Background()
	var m counters
	var stopped atomic.Int64
	a, err := NewLease(kv, "platform", "telegram", "node-a", cfg, func(context.Context) { stopped.Add(1) }, &m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewLease(kv, "platform", "telegram", "node-b", cfg, func(context.Context) {}, &m, quietLog())
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a: acquire = %v, %v", ok, err)
	}
	first, err := kv.Get(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	// Renewals advance the revision; the key outlives several TTLs.
	waitFor(t, "three renewals past 1.5 TTL", func() bool {
		e, err := kv.Get(ctx, "telegram")
		return err == nil && e.Revision() >= first.Revision()+3 && time.Since(first.Created()) > 3*cfg.TTL/2
	})
	if ok, err := b.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("b acquired a held lease: %v, %v", ok, err)
	}
	if !a.Held() {
		t.Fatal("a lost a lease it renewed")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if stopped.Load() != 1 || m.released.Load() != 1 || m.lost.Load() != 0 {
		t.Fatalf("stopped=%d released=%d lost=%d, want 1 1 0", stopped.Load(), m.released.Load(), m.lost.Load())
	}
	if ok, err := b.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("b: acquire after release = %v, %v", ok, err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if m.acquired.Load() != 2 {
		t.Fatalf("acquired = %d, want 2", m.acquired.Load())
	}
}

// event is one step recorded against the test's single clock.
type event struct {
	at   time.Time
	node string
	what string // "acquired", "stopped"
}

type recorder struct {
	mu     sync.Mutex
	events []event
	holder atomic.Pointer[string]
	bad    atomic.Int64
}

func (r *recorder) add(node, what string) {
	r.mu.Lock()
	r.events = append(r.events, event{time.Now(), node, what})
	r.mu.Unlock()
}

// TestLeaseRaceOneHolder: nodes race for one key while holders release and
// retake it; at no instant do two nodes hold it.
func TestLeaseRaceOneHolder(t *testing.T) {
	s := natstest.StartServer(t)
	cfg := fastLease
	var rec recorder
	var m counters
	ctx := context.Background()
	var wg sync.WaitGroup
	var acquisitions atomic.Int64
	for _, node := range []string{"a", "b", "c"} {
		js := connect(t, s.ClientURL())
		kv := bucket(t, js, cfg.TTL, 1)
		l, err := NewLease(kv, "partition", "p-7", node, cfg, func(context.Context) {
			rec.add(node, "stopped")
			if !rec.holder.CompareAndSwap(&node, nil) {
				rec.bad.Add(1)
			}
		}, &m, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acquisitions.Load() < 12 {
				ok, err := l.TryAcquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if !rec.holder.CompareAndSwap(nil, &node) {
					rec.bad.Add(1)
				}
				rec.add(node, "acquired")
				acquisitions.Add(1)
				time.Sleep(50 * time.Millisecond)
				if err := l.Release(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if rec.bad.Load() != 0 {
		t.Fatalf("%d overlapping holdings", rec.bad.Load())
	}
	// Events alternate acquired/stopped.
	for i, e := range rec.events {
		want := "acquired"
		if i%2 == 1 {
			want = "stopped"
		}
		if e.what != want || (i%2 == 1 && e.node != rec.events[i-1].node) {
			t.Fatalf("event %d = %+v, want %s (events %v)", i, e, want, rec.events)
		}
	}
	if m.lost.Load() != 0 {
		t.Fatalf("lost = %d, want 0", m.lost.Load())
	}
}

// TestLeaseHolderCutStopsBeforeTakeover: the holder's connection to NATS is
// blackholed; it stops its work by its fencing deadline, and the other node
// acquires the key only after that, once the key expired.
func TestLeaseHolderCutStopsBeforeTakeover(t *testing.T) {
	s := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, s.Addr().String())
	cfg := LeaseConfig{TTL: 3 * time.Second, Renew: 300 * time.Millisecond, StopTimeout: 500 * time.Millisecond, Drift: 300 * time.Millisecond}
	jsA := connect(t, proxy.URL())
	jsB := connect(t, s.ClientURL())
	kvA := bucket(t, jsA, cfg.TTL, 1)
	kvB := bucket(t, jsB, cfg.TTL, 1)
	ctx := context.Background()
	var rec recorder
	var m counters
	a, _ := NewLease(kvA, "platform", "telegram", "a", cfg, func(context.Context) {
		time.Sleep(100 * time.Millisecond) // the adapter takes a while to stop
		rec.add("a", "stopped")
	}, &m, quietLog())
	b, _ := NewLease(kvB, "platform", "telegram", "b", cfg, func(context.Context) { rec.add("b", "stopped") }, &m, quietLog())
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a: acquire = %v, %v", ok, err)
	}
	rec.add("a", "acquired")
	waitFor(t, "a renewed", func() bool {
		e, err := kvB.Get(ctx, "telegram")
		return err == nil && e.Revision() > 1
	})
	proxy.Cut()
	cut := time.Now()
	var took time.Time
	waitFor(t, "b acquired", func() bool {
		ok, err := b.TryAcquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			took = time.Now()
			rec.add("b", "acquired")
		}
		return ok
	})
	waitFor(t, "a counted the loss", func() bool { return m.lost.Load() == 1 })
	rec.mu.Lock()
	events := append([]event(nil), rec.events...)
	rec.mu.Unlock()
	var aStopped time.Time
	for _, e := range events {
		if e.node == "a" && e.what == "stopped" {
			aStopped = e.at
		}
	}
	if aStopped.IsZero() || !aStopped.Before(took) {
		t.Fatalf("a stopped at %v, b acquired at %v: events %v", aStopped, took, events)
	}
	t.Logf("TTL %v: a stopped %v after the cut, b took over %v after the cut (%v after a stopped)",
		cfg.TTL, aStopped.Sub(cut).Round(time.Millisecond), took.Sub(cut).Round(time.Millisecond), took.Sub(aStopped).Round(time.Millisecond))
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseSurvivesNATSNodeLoss: on an R3 bucket of a 3-node JetStream
// cluster, a lease keeps renewing when one NATS server dies, and a lease
// released afterwards passes to another node.
func TestLeaseSurvivesNATSNodeLoss(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	// Both clients connect to the first two servers; the third is killed.
	url := urls[0] + "," + urls[1]
	cfg := LeaseConfig{TTL: 4 * time.Second, Renew: 300 * time.Millisecond, StopTimeout: 500 * time.Millisecond, Drift: 400 * time.Millisecond}
	kvA := bucket(t, connect(t, url), cfg.TTL, 3)
	kvB := bucket(t, connect(t, url), cfg.TTL, 3)
	ctx := context.Background()
	var m counters
	a, _ := NewLease(kvA, "partition", "p-1", "a", cfg, func(context.Context) {}, &m, quietLog())
	b, _ := NewLease(kvB, "partition", "p-1", "b", cfg, func(context.Context) {}, &m, quietLog())
	waitFor(t, "a acquired on the R3 bucket", func() bool {
		ok, err := a.TryAcquire(ctx)
		return ok && err == nil
	})
	e0, err := kvB.Get(ctx, "p-1")
	if err != nil {
		t.Fatal(err)
	}
	servers[2].Shutdown()
	waitFor(t, "renewals after a NATS node died", func() bool {
		e, err := kvB.Get(ctx, "p-1")
		return err == nil && e.Revision() >= e0.Revision()+5
	})
	if !a.Held() || m.lost.Load() != 0 {
		t.Fatalf("held=%v lost=%d after a NATS node died", a.Held(), m.lost.Load())
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b acquired after release", func() bool {
		ok, err := b.TryAcquire(ctx)
		return ok && err == nil
	})
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseReleaseGivesStopItsTimeout: Release with a context that has
// already ended still gives the work its whole StopTimeout to stop, so the
// key is never given up while the work runs; the delete then fails and the
// key expires after the TTL.
func TestLeaseReleaseGivesStopItsTimeout(t *testing.T) {
	kv, cfg := fastLeaseBucket(t)
	var m counters
	var stopErr error
	var left time.Duration
	l, err := NewLease(kv, "platform", "telegram", "a", cfg, func(ctx context.Context) {
		stopErr = ctx.Err()
		if d, ok := ctx.Deadline(); ok {
			left = time.Until(d)
		}
	}, &m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.TryAcquire(context.Background()); !ok || err != nil {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Release(ctx); err == nil {
		t.Fatal("release with an ended context deleted the key")
	}
	if stopErr != nil || left <= cfg.StopTimeout/2 {
		t.Fatalf("stop got ctx err %v with %v left, want its StopTimeout %v", stopErr, left, cfg.StopTimeout)
	}
	if l.Held() || m.released.Load() != 1 {
		t.Fatalf("held=%v released=%d after release", l.Held(), m.released.Load())
	}
}

// TestLeaseBucketKeepsItsTTL: opening a lease bucket with another TTL is an
// error and leaves the bucket's TTL alone; a shorter TTL would let keys
// expire before their holders fence.
func TestLeaseBucketKeepsItsTTL(t *testing.T) {
	s := natstest.StartServer(t)
	js := connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := LeaseBucket(ctx, js, "leases", 3*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := LeaseBucket(ctx, js, "leases", 3*time.Second, 1); err != nil {
		t.Fatalf("reopen with the same ttl: %v", err)
	}
	if _, err := LeaseBucket(ctx, js, "leases", 2*time.Second, 1); err == nil {
		t.Fatal("opened with a shorter ttl")
	}
	kv, err := js.KeyValue(ctx, "leases")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.TTL() != 3*time.Second {
		t.Fatalf("bucket ttl after a mismatched open: %v, %v", st, err)
	}
}

// TestLeaseReleaseAfterUnrecordedRenewal: Release cancels a renewal in
// flight, which the server may store all the same. The key then holds this
// holder's value at a revision it never recorded; Release still deletes it,
// so the next holder need not wait for the TTL. A key someone else wrote is
// left alone.
func TestLeaseReleaseAfterUnrecordedRenewal(t *testing.T) {
	s := natstest.StartServer(t)
	js := connect(t, s.ClientURL())
	// Renew is long: the renewer does not run during the test.
	cfg := LeaseConfig{TTL: 10 * time.Second, Renew: 5 * time.Second, StopTimeout: time.Second, Drift: time.Second}
	kv := bucket(t, js, cfg.TTL, 1)
	ctx := context.Background()
	var m counters
	for _, writer := range []string{"a", "b"} {
		l, err := NewLease(kv, "platform", "telegram", "a", cfg, func(context.Context) {}, &m, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("acquire = %v, %v", ok, err)
		}
		e, err := kv.Get(ctx, "telegram")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Update(ctx, "telegram", []byte(writer), e.Revision()); err != nil {
			t.Fatal(err)
		}
		err = l.Release(ctx)
		_, gerr := kv.Get(ctx, "telegram")
		switch writer {
		case "a":
			if err != nil || !errors.Is(gerr, jetstream.ErrKeyNotFound) {
				t.Fatalf("own unrecorded renewal: release = %v, key after: %v", err, gerr)
			}
		case "b":
			if err == nil || gerr != nil {
				t.Fatalf("someone else's write: release = %v, key after: %v", err, gerr)
			}
		}
	}
}
