// SPDX-License-Identifier: Apache-2.0

package watchdog

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/systemd/notify"
	"github.com/heraldgw/herald/pkg/systemd/notify/notifytest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

const (
	interval = 40 * time.Millisecond
	wait     = 5 * time.Second
)

func TestInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name, usec, wpid string
		want             time.Duration
		ok               bool
	}{
		{"enabled", "4000000", "", 2 * time.Second, true},
		{"enabled for us", "3000000", pid, 1500 * time.Millisecond, true},
		{"other pid", "4000000", "1", 0, false},
		{"unset", "", "", 0, false},
		{"malformed", "soon", "", 0, false},
		{"zero", "0", "", 0, false},
		{"malformed pid", "4000000", "x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.wpid)
			got, ok := Interval()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Interval() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if os.Getenv("WATCHDOG_USEC") != tt.usec || os.Getenv("WATCHDOG_PID") != tt.wpid {
				t.Error("Interval changed the environment")
			}
		})
	}
}

// harness runs Run in a goroutine with a controllable check.
type harness struct {
	sock   *notifytest.Socket
	hook   *test.Hook
	cancel context.CancelFunc
	done   chan struct{}
	pings  atomic.Int32

	mu      sync.Mutex
	checkFn func(context.Context) error

	running, maxRunning, calls atomic.Int32
}

func start(t *testing.T, checkTimeout time.Duration, fn func(context.Context) error) *harness {
	t.Helper()
	h := &harness{sock: notifytest.Listen(t), done: make(chan struct{}), checkFn: fn}
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h.hook = hook
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		Run(ctx, notify.New(logrus.NewEntry(log)), interval, checkTimeout, h.check, logrus.NewEntry(log), func() { h.pings.Add(1) })
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) check(ctx context.Context) error {
	h.calls.Add(1)
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for {
		m := h.maxRunning.Load()
		if n <= m || h.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	h.mu.Lock()
	fn := h.checkFn
	h.mu.Unlock()
	return fn(ctx)
}

func (h *harness) setCheck(fn func(context.Context) error) {
	h.mu.Lock()
	h.checkFn = fn
	h.mu.Unlock()
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(wait):
		panic("watchdog.Run did not return after its context was cancelled")
	}
}

// waitLog polls the log until n entries satisfy match.
func (h *harness) waitLog(t *testing.T, n int, match func(*logrus.Entry) bool) {
	t.Helper()
	if !testwait.Until(wait, func() bool {
		c := 0
		for _, e := range h.hook.AllEntries() {
			if match(e) {
				c++
			}
		}
		return c >= n
	}) {
		t.Fatalf("fewer than %d matching log entries within %v: %v", n, wait, h.hook.AllEntries())
	}
}

func (h *harness) warnings() []*logrus.Entry {
	var w []*logrus.Entry
	for _, e := range h.hook.AllEntries() {
		if e.Level == logrus.WarnLevel {
			w = append(w, e)
		}
	}
	return w
}

func isFailure(e *logrus.Entry) bool {
	return strings.Contains(e.Message, "health check") && e.Level <= logrus.DebugLevel && e.Data[logrus.ErrorKey] != nil
}

// leakCheck verifies, after every other cleanup of t (the fake socket's
// included), that the test left no goroutine behind.
func leakCheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func healthy(context.Context) error { return nil }

func TestPingsWhileHealthy(t *testing.T) {
	leakCheck(t)
	h := start(t, 0, healthy)
	for range 3 {
		if got := h.sock.Next(t, wait); got != "WATCHDOG=1" {
			t.Fatalf("datagram %q, want WATCHDOG=1", got)
		}
	}
	h.stop()
	if h.pings.Load() < 3 {
		t.Errorf("onPing called %d times, want >= 3", h.pings.Load())
	}
	if n := len(h.sock.All()); int(h.pings.Load()) != n {
		t.Errorf("onPing called %d times for %d pings", h.pings.Load(), n)
	}
	if w := h.warnings(); len(w) != 0 {
		t.Errorf("warnings while healthy: %v", w)
	}
}

func TestWedgedCheckStopsPingsAndRecovers(t *testing.T) {
	leakCheck(t)
	h := start(t, 0, healthy)
	h.sock.WaitFor(t, "WATCHDOG=1", wait)

	// Wedge: the check blocks and ignores its context, like a deadlocked
	// main loop.
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h.setCheck(func(context.Context) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("wedged check never called")
	}
	pingsAtWedge := h.sock.Count("WATCHDOG=1")
	// Several ticks pass while the check is stuck: each one fails.
	h.waitLog(t, 4, isFailure)
	if got := h.sock.Count("WATCHDOG=1"); got != pingsAtWedge {
		t.Fatalf("%d pings while wedged", got-pingsAtWedge)
	}
	if got := h.maxRunning.Load(); got != 1 {
		t.Errorf("%d checks ran at once, want at most 1", got)
	}
	w := h.warnings()
	if len(w) != 1 || !strings.Contains(w[0].Data[logrus.ErrorKey].(error).Error(), "did not answer within") {
		t.Fatalf("warnings %v, want one naming the timeout", w)
	}

	// Recovery: the stuck check returns, a fresh one passes, pings resume.
	h.setCheck(healthy)
	h.sock.Skip()
	close(release)
	h.sock.WaitFor(t, "WATCHDOG=1", wait)
	h.waitLog(t, 1, func(e *logrus.Entry) bool {
		return e.Level == logrus.InfoLevel && strings.Contains(e.Message, "passes again")
	})
	if got := h.maxRunning.Load(); got != 1 {
		t.Errorf("%d checks ran at once, want at most 1", got)
	}
}

func TestFailingCheckWithholdsPings(t *testing.T) {
	leakCheck(t)
	var fail atomic.Bool
	fail.Store(true)
	h := start(t, 0, func(context.Context) error {
		if fail.Load() {
			return errors.New("dispatcher loop last ticked 12s ago")
		}
		return nil
	})
	h.waitLog(t, 3, isFailure)
	if got := h.sock.All(); len(got) != 0 {
		t.Fatalf("pings while failing: %q", got)
	}
	w := h.warnings()
	if len(w) != 1 || !strings.Contains(w[0].Data[logrus.ErrorKey].(error).Error(), "dispatcher loop last ticked") {
		t.Fatalf("warnings %v, want exactly one naming the reason", w)
	}
	if w[0].Data[logging.FieldMessageID] != logging.MsgWatchdogCheckFailed {
		t.Errorf("warning without MESSAGE_ID %s: %v", logging.MsgWatchdogCheckFailed, w[0].Data)
	}
	fail.Store(false)
	h.sock.WaitFor(t, "WATCHDOG=1", wait)

	// A second streak warns again.
	fail.Store(true)
	h.waitLog(t, 2, func(e *logrus.Entry) bool { return e.Level == logrus.WarnLevel })
}

func TestLateAnswerIsAFailure(t *testing.T) {
	leakCheck(t)
	var deadlines sync.Map
	h := start(t, 10*time.Millisecond, func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		deadlines.Store(d, ok)
		<-ctx.Done() // answers nil, but only after the deadline
		return nil
	})
	h.waitLog(t, 3, isFailure)
	if got := h.sock.All(); len(got) != 0 {
		t.Fatalf("pinged on late answers: %q", got)
	}
	deadlines.Range(func(_, ok any) bool {
		if !ok.(bool) {
			t.Error("check context has no deadline")
		}
		return true
	})
}

func TestCheckTimeoutCapped(t *testing.T) {
	leakCheck(t)
	got := make(chan time.Duration, 1)
	h := start(t, time.Hour, func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		select {
		case got <- time.Until(d):
		default:
		}
		return nil
	})
	select {
	case d := <-got:
		if d > interval/2 {
			t.Errorf("check deadline %v away, want at most interval/2 = %v", d, interval/2)
		}
	case <-time.After(wait):
		t.Fatal("check not called")
	}
	h.stop()
}

func TestStopsOnCancelWhileWedged(t *testing.T) {
	leakCheck(t)
	entered := make(chan struct{})
	var once sync.Once
	h := start(t, 0, func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-ctx.Done() // honours its context, as herald's checks do
		return ctx.Err()
	})
	<-entered
	h.stop() // panics if Run does not return
}

func TestDisabled(t *testing.T) {
	leakCheck(t)
	s := notifytest.Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), notify.New(nil), 0, 0, healthy, nil, nil)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Run with interval 0 did not return")
	}
	if len(s.All()) != 0 {
		t.Errorf("pinged: %q", s.All())
	}
}
