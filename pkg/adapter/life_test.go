// SPDX-License-Identifier: Apache-2.0

package adapter_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var nopInbox = adapter.InboxFunc(func(context.Context, *message.Inbound) error { return nil })

type reports struct {
	mu  sync.Mutex
	all []adapter.Status
	ch  chan adapter.Phase
}

func newReports() *reports { return &reports{ch: make(chan adapter.Phase, 64)} }

func (r *reports) report(st adapter.Status) {
	r.mu.Lock()
	r.all = append(r.all, st)
	r.mu.Unlock()
	r.ch <- st.Phase
}

func (r *reports) phases() []adapter.Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []adapter.Phase
	for _, st := range r.all {
		out = append(out, st.Phase)
	}
	return out
}

func (r *reports) wait(t *testing.T, p adapter.Phase) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.ch:
			if got == p {
				return
			}
		case <-timeout:
			t.Fatalf("no %s report; reports: %v", p, r.phases())
		}
	}
}

// stopCancelled calls Stop with a context that has already ended and fails
// unless it returns within the contract's bound.
func stopCancelled(t *testing.T, l *adapter.Life, graceful func(context.Context)) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tm := adaptertest.StartTiming()
	err := l.Stop(ctx, graceful)
	tm.Check(t, "Stop after its context ended", adaptertest.StopBound)
	return err
}

func TestLifeStartOnce(t *testing.T) {
	l := adapter.NewLife("x", nil)
	run := func(soft, hard context.Context) { <-hard.Done() }
	if err := l.Start(context.Background(), nil, run); err == nil || err.Error() != "x: start: nil inbox" {
		t.Fatalf("nil inbox: %v", err)
	}
	if err := l.Start(context.Background(), nopInbox, run); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background(), nopInbox, run); err == nil || err.Error() != "x: start: already started" {
		t.Fatalf("second Start: %v", err)
	}
	if err := l.Stop(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background(), nopInbox, run); err == nil || err.Error() != "x: start: adapter already stopped" {
		t.Fatalf("Start after Stop: %v", err)
	}
}

// TestLifeStopStates: Stop returns within 100 ms of its context in every
// state a run loop can be in, and no goroutine outlives it (TestMain).
func TestLifeStopStates(t *testing.T) {
	blocked := make(chan struct{})
	t.Cleanup(func() { close(blocked) })
	cases := map[string]func(l *adapter.Life, up chan<- struct{}) func(soft, hard context.Context){
		"never started": nil,
		// connecting: a dial that obeys only hard.
		"connecting": func(_ *adapter.Life, up chan<- struct{}) func(soft, hard context.Context) {
			return func(_, hard context.Context) { up <- struct{}{}; <-hard.Done() }
		},
		// backing off between attempts, on soft.
		"backoff": func(_ *adapter.Life, up chan<- struct{}) func(soft, hard context.Context) {
			return func(soft, _ context.Context) { up <- struct{}{}; adapter.Sleep(soft, time.Hour) }
		},
		// a close handshake the platform never answers.
		"blackholed close": func(_ *adapter.Life, up chan<- struct{}) func(soft, hard context.Context) {
			return func(soft, hard context.Context) {
				up <- struct{}{}
				<-soft.Done()
				<-hard.Done()
			}
		},
		// a helper goroutine and a send in flight.
		"mid-send": func(l *adapter.Life, up chan<- struct{}) func(soft, hard context.Context) {
			return func(_, hard context.Context) {
				l.Go(func() { <-hard.Done() })
				ctx, end, err := l.Begin(context.Background())
				if err != nil {
					panic(err)
				}
				go func() { defer end(); <-ctx.Done() }()
				up <- struct{}{}
				<-hard.Done()
			}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			r := newReports()
			l := adapter.NewLife("x", r.report)
			l.CloseBound = time.Hour
			if mk != nil {
				up := make(chan struct{}, 1)
				if err := l.Start(context.Background(), nopInbox, mk(l, up)); err != nil {
					t.Fatal(err)
				}
				<-up
			}
			if err := stopCancelled(t, l, func(ctx context.Context) {
				select { // a graceful step that obeys ctx
				case <-blocked:
				case <-ctx.Done():
				}
			}); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if ph := r.phases(); ph[len(ph)-1] != adapter.PhaseStopped {
				t.Fatalf("last report %v", ph)
			}
		})
	}
}

// TestLifeStopReportsStragglers: a goroutine that ignores every context
// does not hold Stop past its bound, and the error says so.
func TestLifeStopReportsStragglers(t *testing.T) {
	release := make(chan struct{})
	l := adapter.NewLife("x", nil)
	if err := l.Start(context.Background(), nopInbox, func(_, _ context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	err := stopCancelled(t, l, nil)
	close(release)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop: %v, want an error wrapping context.Canceled", err)
	}
	// A second Stop returns the first one's result.
	if err2 := l.Stop(context.Background(), nil); err2 != err {
		t.Fatalf("second Stop: %v, want %v", err2, err)
	}
}

// TestLifeGracefulClose: run gets CloseBound to finish on its own after
// soft ends, before hard ends, and the OnStop functions run after it.
func TestLifeGracefulClose(t *testing.T) {
	r := newReports()
	l := adapter.NewLife("x", r.report)
	l.CloseBound = 10 * time.Second
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	l.OnStop(func(context.Context, error) { note("onstop") })
	if err := l.Start(context.Background(), nopInbox, func(soft, hard context.Context) {
		<-soft.Done()
		if hard.Err() != nil {
			note("hard ended before the close")
		}
		note("closed")
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(context.Background(), func(context.Context) { note("graceful") }); err != nil {
		t.Fatal(err)
	}
	l.Report(adapter.Status{Phase: adapter.PhaseConnected})
	want := []string{"graceful", "closed", "onstop"}
	if len(order) != len(want) || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Fatalf("order %v, want %v", order, want)
	}
	if ph := r.phases(); len(ph) != 2 || ph[0] != adapter.PhaseStarting || ph[1] != adapter.PhaseStopped {
		t.Fatalf("reports %v: want starting, stopped and nothing after it", ph)
	}
}

// TestLifeCloseBound: a close the platform never answers is cut off after
// CloseBound by hard.
func TestLifeCloseBound(t *testing.T) {
	l := adapter.NewLife("x", nil)
	l.CloseBound = 20 * time.Millisecond
	hardEnded := make(chan struct{})
	if err := l.Start(context.Background(), nopInbox, func(_, hard context.Context) {
		<-hard.Done()
		close(hardEnded)
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	<-hardEnded
}

func TestLifeBegin(t *testing.T) {
	l := adapter.NewLife("x", nil)
	ctx, end, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); defer end(); <-ctx.Done() }()
	if err := l.Stop(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	<-done // Stop of a never-started adapter ends calls in flight
	if _, _, err := l.Begin(context.Background()); !errors.Is(err, adapter.ErrStopped) {
		t.Fatalf("Begin after Stop: %v", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	b := adapter.Backoff{Min: time.Second, Max: time.Minute}
	for n := range 12 {
		c := min(time.Second<<n, time.Minute)
		for range 200 {
			if d := b.Delay(n); d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, d, c/2, c)
			}
		}
	}
	b.Jitter = 0.2
	for range 200 {
		if d := b.Delay(2); d < 3200*time.Millisecond || d > 4*time.Second {
			t.Fatalf("Delay(2) with jitter 0.2 = %v, want within [3.2s, 4s]", d)
		}
	}
	// The jitter spreads: 200 draws are not all equal.
	seen := map[time.Duration]bool{}
	for range 200 {
		seen[b.Delay(5)] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
	if d := (adapter.Backoff{}).Delay(3); d != 0 {
		t.Fatalf("zero Backoff: %v", d)
	}
}

func TestBackoffNextReset(t *testing.T) {
	b := adapter.Backoff{Min: 8 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	for n := range 4 {
		c := 8 * time.Millisecond << n
		if d := b.Next(); d < c/2 || d > c {
			t.Fatalf("Next #%d = %v, want within [%v, %v]", n, d, c/2, c)
		}
	}
	b.Reset()
	if d := b.Next(); d > 8*time.Millisecond {
		t.Fatalf("Next after Reset = %v", d)
	}
}

func TestSleep(t *testing.T) {
	if !adapter.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep did not report that d passed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if adapter.Sleep(ctx, time.Hour) || adapter.Sleep(ctx, 0) {
		t.Fatal("Sleep on an ended context reported that d passed")
	}
}

// TestReconnect: failures are reported as reconnecting and counted, a
// connection that worked resets the backoff, rejected credentials end the
// loop as fatal.
func TestReconnect(t *testing.T) {
	r := newReports()
	l := adapter.NewLife("x", r.report)
	m := &countMetrics{}
	log := logrus.New()
	log.SetOutput(io.Discard)
	var attempts int
	rc := adapter.Reconnect{Life: l, Log: logrus.NewEntry(log), Metrics: m, Backoff: adapter.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}}
	rc.Run(context.Background(), func(context.Context) adapter.Attempt {
		attempts++
		switch attempts {
		case 1:
			return adapter.Attempt{Err: errors.New("refused")}
		case 2:
			l.Report(adapter.Status{Phase: adapter.PhaseConnected})
			return adapter.Attempt{Err: errors.New("dropped"), Healthy: true, Immediate: true}
		default:
			return adapter.Attempt{Err: adapter.ErrUnauthorized}
		}
	})
	want := []adapter.Phase{adapter.PhaseReconnecting, adapter.PhaseConnected, adapter.PhaseReconnecting, adapter.PhaseFatal}
	got := r.phases()
	if len(got) != len(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reports %v, want %v", got, want)
		}
	}
	if m.n != 2 || attempts != 3 {
		t.Fatalf("reconnects %d, attempts %d", m.n, attempts)
	}
}

// TestReconnectStopsInBackoff: the loop ends with its context while it
// waits for the next attempt.
func TestReconnectStopsInBackoff(t *testing.T) {
	r := newReports()
	l := adapter.NewLife("x", r.report)
	log := logrus.New()
	log.SetOutput(io.Discard)
	rc := adapter.Reconnect{Life: l, Log: logrus.NewEntry(log), Metrics: adapter.NopMetrics{}, Backoff: adapter.Backoff{Min: time.Hour, Max: time.Hour}}
	if err := l.Start(context.Background(), nopInbox, func(soft, _ context.Context) {
		rc.Run(soft, func(context.Context) adapter.Attempt { return adapter.Attempt{Err: errors.New("refused")} })
	}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, adapter.PhaseReconnecting)
	if err := stopCancelled(t, l, nil); err != nil {
		t.Fatal(err)
	}
}

type countMetrics struct{ n int }

func (m *countMetrics) Reconnect()      { m.n++ }
func (m *countMetrics) Rejected(string) {}

func TestReconnectBackoffBounds(t *testing.T) {
	b := adapter.ReconnectBackoff()
	for n := 0; n < 20; n++ {
		if d := b.Next(); d <= 0 || d > time.Minute {
			t.Fatalf("attempt %d: delay %v outside (0, 1m]", n, d)
		}
	}
	if d := b.Delay(0); d > time.Second {
		t.Fatalf("first delay %v, want at most 1s", d)
	}
}
