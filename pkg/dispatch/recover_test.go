// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// holdingAdapter is a platform without idempotency keys whose next send
// creates the message and then holds the answer until the caller gives up:
// what the user sees when herald dies during the send.
type holdingAdapter struct {
	*fakeAdapter
	hold    bool
	holding chan struct{} // closed when a send is being held
}

func (h *holdingAdapter) Send(ctx context.Context, m *message.Outbound) (adapter.SendResult, error) {
	h.mu.Lock()
	hold := h.hold
	h.hold = false
	h.mu.Unlock()
	if !hold {
		return h.fakeAdapter.Send(ctx, m)
	}
	h.mu.Lock()
	h.record(m)
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
	close(h.holding)
	<-ctx.Done()
	// As the real adapters classify a request written but not answered.
	return adapter.SendResult{}, fmt.Errorf("fake: %w: %v", adapter.ErrAmbiguous, ctx.Err())
}

// recoveringAdapter implements adapter.Recoverer the way the Slack adapter
// does (find the earlier message by its key, else send), or declines as
// an at-most-once policy does.
type recoveringAdapter struct {
	*fakeAdapter
	decline bool

	rmu     sync.Mutex
	since   []time.Time
	plain   int // plain sends
	nextErr error
}

func (r *recoveringAdapter) Send(ctx context.Context, m *message.Outbound) (adapter.SendResult, error) {
	r.rmu.Lock()
	r.plain++
	r.rmu.Unlock()
	return r.fakeAdapter.Send(ctx, m)
}

func (r *recoveringAdapter) Recover(ctx context.Context, m *message.Outbound, since time.Time) (adapter.SendResult, error) {
	r.rmu.Lock()
	r.since = append(r.since, since)
	err := r.nextErr
	r.nextErr = nil
	r.rmu.Unlock()
	if err != nil {
		return adapter.SendResult{}, err
	}
	if r.decline {
		return adapter.SendResult{}, fmt.Errorf("fake: %w", adapter.ErrNotResent)
	}
	r.mu.Lock()
	found := r.byKey[m.IdempotencyKey]
	r.mu.Unlock()
	if found {
		return adapter.SendResult{MessageID: "found"}, nil
	}
	return r.fakeAdapter.Send(ctx, m)
}

func (r *recoveringAdapter) calls() (recovers []time.Time, plain int) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return append([]time.Time(nil), r.since...), r.plain
}

// reopen replaces the dispatcher and store with new ones on the same
// database, serving platform "p" with p: the next instance.
func (e *env) reopen(p Platform) {
	e.t.Helper()
	e.close()
	st, err := store.Open(context.Background(), e.path, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.d = New(st, e.agent, map[string]Platform{"p": p}, Options{InitialBackoff: 10 * time.Millisecond, TurnRetryBackoff: 10 * time.Millisecond}, quietLog(), e.m)
	if _, _, err := e.d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// killDuringSend delivers a message on a platform without idempotency keys
// whose send is held after the message was created, then stops the
// dispatcher and store without any outcome recorded, as a SIGKILL would.
// It returns the shared view of what the user sees and when the send began
// at the latest.
func killDuringSend(t *testing.T) (*env, *fakeAdapter, time.Time) {
	t.Helper()
	e := newEnv(t, Options{}, allowAll)
	shown := e.ad
	h := &holdingAdapter{fakeAdapter: shown, hold: true, holding: make(chan struct{})}
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: h, Policy: allowAll}})
	e.deliver(in("1", "c", "u", "hi"))
	select {
	case <-h.holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the send never started")
	}
	before := time.Now()
	e.close()
	return e, shown, before
}

// Regression: a reply whose send was under way when herald died was sent
// again by the next instance, and a Slack or Telegram user saw it twice.
func TestUnknownOutcomeAfterRestartIsNotResentBlindly(t *testing.T) {
	e, shown, _ := killDuringSend(t)
	e.reopen(Platform{Adapter: shown, Policy: allowAll})
	waitOutbox(t, e.st, 0, 1)
	if n := len(shown.Sent()); n != 1 {
		t.Fatalf("the user sees %d replies, want 1", n)
	}
}

// With a Recoverer the next instance asks the adapter, which finds the
// message the killed send created: one reply, recorded as delivered.
func TestUnknownOutcomeAfterRestartRecovered(t *testing.T) {
	e, shown, killedAt := killDuringSend(t)
	r := &recoveringAdapter{fakeAdapter: shown}
	e.reopen(Platform{Adapter: r, Policy: allowAll})
	waitDelivered(t, e.st, 1)
	recovers, plain := r.calls()
	if len(recovers) != 1 || plain != 0 {
		t.Fatalf("%d recoveries and %d plain sends, want 1 and 0", len(recovers), plain)
	}
	if recovers[0].After(killedAt) || time.Since(recovers[0]) > time.Minute {
		t.Fatalf("Recover since %v, want the start of the killed send (before %v)", recovers[0], killedAt)
	}
	if n := len(shown.Sent()); n != 1 {
		t.Fatalf("the user sees %d replies, want 1", n)
	}
}

// An at-most-once Recoverer declines: the reply is given up, not resent.
func TestUnknownOutcomeRecoverDeclined(t *testing.T) {
	e, shown, _ := killDuringSend(t)
	r := &recoveringAdapter{fakeAdapter: shown, decline: true}
	e.reopen(Platform{Adapter: r, Policy: allowAll})
	waitOutbox(t, e.st, 0, 1)
	if recovers, plain := r.calls(); len(recovers) != 1 || plain != 0 {
		t.Fatalf("%d recoveries and %d plain sends, want 1 and 0", len(recovers), plain)
	}
	if n := len(shown.Sent()); n != 1 {
		t.Fatalf("the user sees %d replies, want 1", n)
	}
}

// A recovery that fails for a passing reason is retried, and the outcome
// stays unknown across another restart.
func TestUnknownOutcomeSurvivesFailedRecovery(t *testing.T) {
	e, shown, _ := killDuringSend(t)
	r := &recoveringAdapter{fakeAdapter: shown, nextErr: fmt.Errorf("fake: %w", adapter.ErrTemporary)}
	e.reopen(Platform{Adapter: r, Policy: allowAll})
	waitDelivered(t, e.st, 1)
	if recovers, plain := r.calls(); len(recovers) != 2 || plain != 0 {
		t.Fatalf("%d recoveries and %d plain sends, want 2 and 0", len(recovers), plain)
	}
	if n := len(shown.Sent()); n != 1 {
		t.Fatalf("the user sees %d replies, want 1", n)
	}
}

// A send that failed before it reached the platform is no unknown outcome:
// the next instance sends the reply plainly.
func TestKnownFailureIsSentPlainlyAfterRestart(t *testing.T) {
	e := newEnv(t, Options{MaxBackoff: time.Hour, InitialBackoff: time.Hour}, allowAll)
	r := &recoveringAdapter{fakeAdapter: e.ad}
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: r, Policy: allowAll}})
	e.ad.fail = []error{adapter.ErrTemporary}
	e.deliver(in("1", "c", "u", "hi"))
	waitRetry(t, e.st)
	if got, err := e.st.StartedAttempts(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("started attempts after a known failure: %v %v", got, err)
	}
}

// In one process an ambiguous send on a platform with a Recoverer is
// retried through Recover, which finds the message: one reply.
func TestAmbiguousSendRetriedThroughRecover(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	r := &recoveringAdapter{fakeAdapter: e.ad}
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: r, Policy: allowAll}})
	e.ad.fail = []error{fmt.Errorf("fake: %w", adapter.ErrAmbiguous)}
	start := time.Now()
	e.deliver(in("1", "c", "u", "hi"))
	waitDelivered(t, e.st, 1)
	recovers, plain := r.calls()
	if plain != 1 || len(recovers) != 1 || recovers[0].Before(start.Add(-time.Millisecond)) {
		t.Fatalf("%d plain sends and recoveries %v, want 1 and one since the first send", plain, recovers)
	}
	if n := len(e.ad.Sent()); n != 1 {
		t.Fatalf("the user sees %d replies, want 1", n)
	}
}
