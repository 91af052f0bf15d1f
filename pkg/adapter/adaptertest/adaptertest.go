// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

// Inbox records delivered messages and deduplicates on (Platform, EventID)
// like herald's store. Set Fail to make Deliver fail (the adapter must then
// not acknowledge). The zero value is ready to use.
type Inbox struct {
	mu       sync.Mutex
	msgs     []*message.Inbound
	seen     map[string]bool
	calls    int
	fail     error
	block    chan struct{}
	notify   chan struct{}
	notifyMu sync.Mutex
}

// SetFail makes every later Deliver return err (nil restores success).
func (in *Inbox) SetFail(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.fail = err
}

// Block makes Deliver wait until the returned function is called or its ctx
// ends, simulating a slow store.
func (in *Inbox) Block() (release func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	ch := make(chan struct{})
	in.block = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			in.mu.Lock()
			in.block = nil
			in.mu.Unlock()
			close(ch)
		})
	}
}

// Deliver implements adapter.Inbox.
func (in *Inbox) Deliver(ctx context.Context, m *message.Inbound) error {
	in.mu.Lock()
	in.calls++
	block := in.block
	fail := in.fail
	in.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	if err := m.Validate(); err != nil {
		return err
	}
	in.mu.Lock()
	if in.seen == nil {
		in.seen = map[string]bool{}
	}
	key := m.Platform + "\x00" + m.EventID
	if !in.seen[key] {
		in.seen[key] = true
		cp := *m
		in.msgs = append(in.msgs, &cp)
	}
	in.mu.Unlock()
	in.wake()
	return nil
}

func (in *Inbox) wake() {
	in.notifyMu.Lock()
	defer in.notifyMu.Unlock()
	if in.notify != nil {
		close(in.notify)
		in.notify = nil
	}
}

// Messages returns the distinct messages stored so far.
func (in *Inbox) Messages() []*message.Inbound {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*message.Inbound(nil), in.msgs...)
}

// Calls returns how many times Deliver was called, duplicates included.
func (in *Inbox) Calls() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls
}

// WaitN waits until at least n distinct messages are stored and returns
// them, failing the test after timeout.
func (in *Inbox) WaitN(t testing.TB, n int, timeout time.Duration) []*message.Inbound {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		in.notifyMu.Lock()
		if in.notify == nil {
			in.notify = make(chan struct{})
		}
		ch := in.notify
		in.notifyMu.Unlock()
		if msgs := in.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("inbox: got %d messages after %v, want %d", len(in.Messages()), timeout, n)
			return nil
		}
	}
}

// Statuses records status reports.
type Statuses struct {
	mu     sync.Mutex
	all    []adapter.Status
	notify chan struct{}
}

// Report is an adapter.Env.Report function.
func (s *Statuses) Report(st adapter.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, st)
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}

// All returns every report so far.
func (s *Statuses) All() []adapter.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]adapter.Status(nil), s.all...)
}

// Last returns the latest report.
func (s *Statuses) Last() adapter.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		return adapter.Status{}
	}
	return s.all[len(s.all)-1]
}

// WaitPhase waits until a report with phase p arrives (or already has) and
// returns it.
func (s *Statuses) WaitPhase(t testing.TB, p adapter.Phase, timeout time.Duration) adapter.Status {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		s.mu.Lock()
		for ; seen < len(s.all); seen++ {
			if s.all[seen].Phase == p {
				st := s.all[seen]
				s.mu.Unlock()
				return st
			}
		}
		if s.notify == nil {
			s.notify = make(chan struct{})
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("status: no %q report within %v; reports: %s", p, timeout, s.describe())
			return adapter.Status{}
		}
	}
}

func (s *Statuses) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ""
	for _, st := range s.all {
		out += fmt.Sprintf("[%s err=%v alarm=%q] ", st.Phase, st.Err, st.Alarm)
	}
	return out
}

// Metrics counts adapter metrics.
type Metrics struct {
	mu         sync.Mutex
	Reconnects int
	Rejects    map[string]int
}

// Reconnect implements adapter.Metrics.
func (m *Metrics) Reconnect() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Reconnects++
}

// Rejected implements adapter.Metrics.
func (m *Metrics) Rejected(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Rejects == nil {
		m.Rejects = map[string]int{}
	}
	m.Rejects[reason]++
}

// Rejections returns the count for reason.
func (m *Metrics) Rejections(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Rejects[reason]
}

// ReconnectCount returns the reconnects counted.
func (m *Metrics) ReconnectCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Reconnects
}

// Env returns an adapter.Env for instance name with a logger writing to
// t.Log, and the recorders behind it.
func Env(t testing.TB, name string) (adapter.Env, *Statuses, *Metrics) {
	st := &Statuses{}
	m := &Metrics{}
	log := logrus.New()
	log.SetOutput(testWriter{t})
	log.SetLevel(logrus.DebugLevel)
	return adapter.Env{
		Name:    name,
		Log:     log.WithField("platform", name),
		Report:  st.Report,
		Metrics: m,
	}, st, m
}

// Logs records every entry logged through env.Log from now on.
func Logs(env adapter.Env) *logtest.Hook { return logtest.NewLocal(env.Log.Logger) }

// RequireEvent returns the first entry in hook with the journal MESSAGE_ID
// id and fails the test if there is none. The catalog entries show the
// error and the platform, so the entry must carry both fields.
func RequireEvent(t testing.TB, hook *logtest.Hook, id string) *logrus.Entry {
	t.Helper()
	for _, e := range hook.AllEntries() {
		if e.Data[logging.FieldMessageID] != id {
			continue
		}
		if e.Data[logrus.ErrorKey] == nil || e.Data["platform"] == nil {
			t.Errorf("event %s %q lacks the error or platform field: %v", id, e.Message, e.Data)
		}
		return e
	}
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Message)
	}
	t.Fatalf("no log entry with MESSAGE_ID %s; logged: %q", id, msgs)
	return nil
}

// NoSecretLogged fails t, at its end, if an entry in hook shows secret: a
// credential must never reach the journal.
func NoSecretLogged(t testing.TB, hook *logtest.Hook, secret string) {
	t.Cleanup(func() {
		for _, e := range hook.AllEntries() {
			if s, _ := e.String(); strings.Contains(s, secret) {
				t.Errorf("a secret leaked into a log entry: %s", s)
			}
		}
	})
}

// Clamps returns the fields of the entries in hook that record a platform
// value out of bounds (adapter.LogClamp): "given" and "used" among them.
func Clamps(hook *logtest.Hook) []logrus.Fields {
	var out []logrus.Fields
	for _, e := range hook.AllEntries() {
		if _, ok := e.Data["given"]; ok {
			out = append(out, e.Data)
		}
	}
	return out
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// StopBound is the contract of adapter.Adapter.Stop: return within this
// long after its context ends.
const StopBound = 100 * time.Millisecond

// Timing measures an operation that must end within a bound: its wall
// time, and how long this process's threads waited for a CPU meanwhile.
type Timing struct {
	start  time.Time
	waited time.Duration
}

// StartTiming starts measuring.
func StartTiming() Timing { return Timing{start: time.Now(), waited: runDelay()} }

// Check fails the test when the operation took longer than bound. The
// duration is wall time, so on a loaded machine it includes time the
// kernel and the Go scheduler, not the code, spent: a Stop whose 50 ms
// grace timer fires 60 ms late is the machine. So a duration over the bound
// is forgiven up to what the process's threads waited on the kernel's run
// queues during the operation (/proc/self/task/*/schedstat) plus twice how
// late timers fire now (the worst of three 20 ms sleeps). On an idle
// machine both are well under a millisecond, so a Stop that really waits
// (on a network call, a lock) fails.
func (tm Timing) Check(t testing.TB, what string, bound time.Duration) {
	t.Helper()
	took := time.Since(tm.start)
	if took <= bound {
		return
	}
	waited := max(runDelay()-tm.waited, 0)
	late := TimerLateness()
	if took > bound+waited+2*late {
		t.Fatalf("%s took %v, bound %v (its threads waited %v for a CPU meanwhile; timers fire up to %v late now)", what, took, bound, waited, late)
	}
	t.Logf("%s took %v, over its bound %v by less than the machine's delays (threads waited %v for a CPU; timers %v late)", what, took, bound, waited, late)
}

// runDelay is the total time this process's threads have waited on a run
// queue (the second field of /proc/self/task/*/schedstat), 0 where the
// kernel does not say.
func runDelay() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "schedstat"))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// TimerLateness is how late a 20 ms sleep wakes up, the worst of three.
func TimerLateness() time.Duration {
	const nap = 20 * time.Millisecond
	var worst time.Duration
	for range 3 {
		start := time.Now()
		time.Sleep(nap)
		worst = max(worst, time.Since(start)-nap)
	}
	return worst
}

// StopWithin calls a.Stop with a context that is already cancelled and fails
// the test unless it returns within StopBound. Call it with the adapter in
// the state under test (mid-handshake, mid-poll, backing off, connected).
func StopWithin(t testing.TB, a adapter.Adapter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	tm := StartTiming()
	go func() { done <- a.Stop(ctx) }()
	select {
	case <-done:
		tm.Check(t, fmt.Sprintf("%T: Stop after its context ended", a), StopBound)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: Stop did not return 5s after its context ended (bound %v)", fmt.Sprintf("%T", a), StopBound)
	}
}

// StopAfter calls a.Stop with a context that ends after timeout and fails
// the test unless Stop returns within timeout + StopBound. It covers the
// graceful path: an adapter may use the time to send close frames, but a
// server that never answers must not hold it past its context.
func StopAfter(t testing.TB, a adapter.Adapter, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	tm := StartTiming()
	go func() { done <- a.Stop(ctx) }()
	select {
	case <-done:
		tm.Check(t, fmt.Sprintf("%T: Stop", a), timeout+StopBound)
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("%s: Stop did not return within %v (bound %v + %v)", fmt.Sprintf("%T", a), timeout+5*time.Second, timeout, StopBound)
	}
}

// Stop stops a with a context that ends after timeout and reports an error
// from Stop as a test error. Tests use it for the ordinary end of an
// adapter; StopWithin and StopAfter assert the bounds.
func Stop(t testing.TB, a adapter.Adapter, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// Rig is what an adapter's own tests hand it and watch: an Env (with a
// state directory of the test's own) whose status reports, metrics and log
// entries are recorded, and an Inbox to start it with.
type Rig struct {
	Env     adapter.Env
	St      *Statuses
	Metrics *Metrics
	Logs    *logtest.Hook
	Inbox   *Inbox
}

// Build makes an adapter with newAdapter (its package's New) from conf and
// env, failing t on an error, and stops it at the end of the test.
func Build[C any, A adapter.Adapter](t testing.TB, newAdapter func(*C, adapter.Env) (A, error), conf *C, env adapter.Env) A {
	t.Helper()
	a, err := newAdapter(conf, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { Stop(t, a, Wait) })
	return a
}

// Start starts a with the Rig's inbox and waits until it reports
// Connected.
func (r Rig) Start(t testing.TB, a adapter.Adapter) {
	t.Helper()
	if err := a.Start(context.Background(), r.Inbox); err != nil {
		t.Fatalf("Start: %v", err)
	}
	r.St.WaitPhase(t, adapter.PhaseConnected, Wait)
}

// NewRig returns a Rig for an adapter instance called name.
func NewRig(t testing.TB, name string) Rig {
	var r Rig
	r.Env, r.St, r.Metrics = Env(t, name)
	r.Env.StateDir = t.TempDir()
	r.Logs = Logs(r.Env)
	r.Inbox = &Inbox{}
	return r
}
