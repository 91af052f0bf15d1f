// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// Metrics counts lease changes by kind ("partition", "platform").
type Metrics interface {
	LeaseAcquired(kind string)
	LeaseLost(kind string)
	LeaseReleased(kind string)
}

// LeaseConfig holds the lease timing; zero fields take the defaults.
type LeaseConfig struct {
	TTL         time.Duration // bucket TTL: how long a write keeps the key (default 10s)
	Renew       time.Duration // interval between renewals (default TTL/5)
	StopTimeout time.Duration // bound on the stop callback (default 3s)
	Drift       time.Duration // allowance for clock-rate difference over one TTL (default TTL/10)
}

func (c LeaseConfig) withDefaults() LeaseConfig {
	if c.TTL <= 0 {
		c.TTL = 10 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.TTL / 5
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 3 * time.Second
	}
	if c.Drift <= 0 {
		c.Drift = c.TTL / 10
	}
	return c
}

// Margin is how long before the key can expire the holder starts stopping.
func (c LeaseConfig) Margin() time.Duration {
	c = c.withDefaults()
	return c.StopTimeout + c.Drift
}

func (c LeaseConfig) validate() error {
	c = c.withDefaults()
	if c.Renew >= c.TTL-c.Margin() {
		return fmt.Errorf("cluster: lease: renew %v must be shorter than ttl %v minus margin %v", c.Renew, c.TTL, c.Margin())
	}
	return nil
}

// LeaseBucket creates the key-value bucket that holds leases of one TTL,
// with the given replicas, or opens it if it exists with that TTL. It never
// changes an existing bucket's TTL: a shorter TTL would let keys expire
// before their holders' fencing deadlines, so a bucket with another TTL is
// an error.
func LeaseBucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   name,
		History:  1,
		TTL:      ttl,
		Replicas: replicas,
		Storage:  jetstream.FileStorage,
	})
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketExists) {
		return nil, fmt.Errorf("cluster: create bucket %s: %w", name, err)
	}
	if kv, err = js.KeyValue(ctx, name); err != nil {
		return nil, fmt.Errorf("cluster: open bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s status: %w", name, err)
	}
	if st.TTL() != ttl {
		return nil, fmt.Errorf("cluster: bucket %s exists with ttl %v, not %v; every node must use the same ttl", name, st.TTL(), ttl)
	}
	return kv, nil
}

// Lease is one node's claim on one key. TryAcquire takes it when free; a
// goroutine renews it until Release, or until it is lost, when the stop
// callback runs (bounded by StopTimeout) before the key can expire.
type Lease struct {
	kv      jetstream.KeyValue
	kind    string
	key     string
	node    string
	cfg     LeaseConfig
	stop    func(ctx context.Context)
	metrics Metrics
	log     *logrus.Entry

	// valueMu guards value and sent only, so that SetValue never waits
	// behind mu, which is held across store calls.
	valueMu sync.Mutex
	value   []byte // what every write stores; SetValue changes it
	sent    []byte // the value of the last renewal sent, for deleteOwn

	mu   sync.Mutex
	held bool
	rev  uint64
	quit chan struct{}
	done chan struct{}
}

// NewLease prepares a lease on key in kv for node. stop must return once
// the work the lease guards has stopped, or when its context ends.
// The key's value is the node's name.
func NewLease(kv jetstream.KeyValue, kind, key, node string, cfg LeaseConfig, stop func(ctx context.Context), m Metrics, log *logrus.Entry) (*Lease, error) {
	return newLease(kv, kind, key, node, []byte(node), cfg, stop, m, log)
}

// newLease is NewLease with the value every write stores.
func newLease(kv jetstream.KeyValue, kind, key, node string, value []byte, cfg LeaseConfig, stop func(ctx context.Context), m Metrics, log *logrus.Entry) (*Lease, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Lease{kv: kv, kind: kind, key: key, node: node, value: value, cfg: cfg.withDefaults(), stop: stop, metrics: m,
		log: log.WithFields(logrus.Fields{"lease": key, "kind": kind})}, nil
}

// Held reports whether this node holds the lease now.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// SetValue changes the value the lease's writes store from now on: the
// next renewal, within Renew, carries it to the other nodes.
func (l *Lease) SetValue(v []byte) {
	l.valueMu.Lock()
	defer l.valueMu.Unlock()
	l.value = bytes.Clone(v)
}

// currentValue is the value the next write stores.
func (l *Lease) currentValue() []byte {
	l.valueMu.Lock()
	defer l.valueMu.Unlock()
	return l.value
}

// renewalValue is currentValue, remembered as the last renewal's.
func (l *Lease) renewalValue() []byte {
	l.valueMu.Lock()
	defer l.valueMu.Unlock()
	l.sent = l.value
	return l.value
}

// ownValue reports whether v is a value this holder wrote: the current
// one, or that of the last renewal sent.
func (l *Lease) ownValue(v []byte) bool {
	l.valueMu.Lock()
	defer l.valueMu.Unlock()
	return bytes.Equal(v, l.value) || l.sent != nil && bytes.Equal(v, l.sent)
}

// TryAcquire takes the key if it is absent, deleted or expired. It reports
// false with no error when another node holds it.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return true, nil
	}
	if l.done != nil {
		<-l.done // the renewer of an earlier, lost holding has finished
	}
	sent := time.Now()
	rev, err := l.kv.Create(ctx, l.key, l.currentValue())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cluster: create %s: %w", l.key, err)
	}
	l.held, l.rev = true, rev
	l.quit, l.done = make(chan struct{}), make(chan struct{})
	l.metrics.LeaseAcquired(l.kind)
	l.log.WithField("revision", rev).Info("lease acquired")
	go l.renew(sent, rev, l.quit, l.done)
	return true, nil
}

// renew keeps the lease until quit closes or the lease is lost.
func (l *Lease) renew(t0 time.Time, rev uint64, quit, done chan struct{}) {
	defer close(done)
	next := t0.Add(l.cfg.Renew)
	for {
		fence := t0.Add(l.cfg.TTL - l.cfg.Margin())
		wait := time.Until(minTime(next, fence))
		timer := time.NewTimer(wait)
		select {
		case <-quit:
			timer.Stop()
			return
		case <-timer.C:
		}
		if !time.Now().Before(fence) {
			l.lose(rev, "fencing deadline passed without renewal")
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), fence)
		go func() { // a Release cancels a renewal in flight
			select {
			case <-quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		value := l.renewalValue()
		sent := time.Now()
		nrev, err := l.kv.Update(ctx, l.key, value, rev)
		cancel()
		switch {
		case err == nil:
			t0, rev = sent, nrev
			l.mu.Lock()
			l.rev = rev
			l.mu.Unlock()
			next = sent.Add(l.cfg.Renew)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.lose(rev, "renewal rejected: "+err.Error())
			return
		default:
			select {
			case <-quit:
				return
			default:
			}
			l.log.WithError(err).Warn("lease renewal failed; retrying before the fencing deadline")
			next = time.Now().Add(l.cfg.Renew / 4)
		}
	}
}

// lose marks the lease not held and stops the guarded work, bounded. Held
// reports false from the moment the lease is lost; a TryAcquire meanwhile
// waits until the stop callback has returned.
func (l *Lease) lose(rev uint64, why string) {
	l.log.WithField("revision", rev).Warn("lease lost: " + why + "; stopping work")
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StopTimeout)
	l.stop(ctx)
	cancel()
	l.metrics.LeaseLost(l.kind)
}

// Release stops the renewer, then the guarded work, and only then deletes
// the key (revision-checked) so another node can take it at once. A key
// that cannot be deleted expires after the TTL.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	quit, done := l.quit, l.done
	if quit == nil {
		l.mu.Unlock()
		return nil
	}
	select {
	case <-quit:
	default:
		close(quit)
	}
	l.mu.Unlock()
	<-done // the renewer takes l.mu, so wait for it unlocked
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return nil
	}
	// The work gets its whole StopTimeout whatever is left of ctx: a stop
	// cut short would let the next holder start while it still runs.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.StopTimeout)
	l.stop(sctx)
	cancel()
	l.held = false
	l.metrics.LeaseReleased(l.kind)
	if err := l.deleteOwn(ctx); err != nil {
		return fmt.Errorf("cluster: delete %s: %w", l.key, err)
	}
	l.log.Info("lease released")
	return nil
}

// deleteOwn deletes the key against the revision this holder last wrote.
// Release cancels a renewal in flight, and the server may have stored it
// all the same: then the key holds this holder's value (the current one,
// or the one that renewal carried) at a newer revision, and the delete is
// tried again against that one. A revision written by anyone else is left
// alone.
func (l *Lease) deleteOwn(ctx context.Context) error {
	rev := l.rev
	for attempt := 0; ; attempt++ {
		err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
		if err == nil || attempt == 2 || !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		e, gerr := l.kv.Get(ctx, l.key)
		if gerr != nil || e.Revision() <= rev || !l.ownValue(e.Value()) {
			return err
		}
		rev = e.Revision()
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
