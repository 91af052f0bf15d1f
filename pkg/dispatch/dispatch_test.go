// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAdapter records sends the way a platform shows them: deduplicated on
// the idempotency key when idempotent.
type fakeAdapter struct {
	name string

	mu      sync.Mutex
	sent    []message.Outbound
	byKey   map[string]bool
	fail    []error // errors returned by the next sends, in order
	edits   map[string]string
	nextID  int
	limit   int
	editErr error
	changed chan struct{}
	// media is whether SendsMedia reports true (set before use).
	media bool
	// mediaErr, when set, is returned by every send of a media part.
	mediaErr error
	// buttons is whether SendsButtons reports true (set before use).
	buttons bool
	// calls counts every Send, duplicates included.
	calls int
}

func (f *fakeAdapter) SendsButtons() bool { return f.buttons }

func (f *fakeAdapter) SendsMedia(message.MediaKind) bool { return f.media }

func newFakeAdapter(name string) *fakeAdapter {
	return &fakeAdapter{name: name, byKey: map[string]bool{}, edits: map[string]string{}, changed: make(chan struct{}, 1000)}
}

func (f *fakeAdapter) Name() string                                     { return f.name }
func (f *fakeAdapter) Start(ctx context.Context, _ adapter.Inbox) error { return nil }
func (f *fakeAdapter) Stop(ctx context.Context) error                   { return nil }
func (f *fakeAdapter) MaxMessageLen() int {
	if f.limit == 0 {
		return 4000
	}
	return f.limit
}

func (f *fakeAdapter) Send(ctx context.Context, m *message.Outbound) (adapter.SendResult, error) {
	f.mu.Lock()
	defer func() {
		f.mu.Unlock()
		// A wake-up for waitSent, which checks the state again: never
		// block a send on it (a full buffer once stalled deliveries).
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}()
	f.calls++
	if m.Media != nil && f.mediaErr != nil {
		return adapter.SendResult{}, f.mediaErr
	}
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		if !errors.Is(err, adapter.ErrAmbiguous) {
			return adapter.SendResult{}, err
		}
		// Ambiguous: the platform did show it.
		defer func() {}()
		f.record(m)
		return adapter.SendResult{}, err
	}
	f.nextID++
	f.record(m)
	return adapter.SendResult{MessageID: fmt.Sprint("m", f.nextID)}, nil
}

func (f *fakeAdapter) record(m *message.Outbound) {
	if m.IdempotencyKey != "" && f.byKey[m.IdempotencyKey] {
		return
	}
	f.byKey[m.IdempotencyKey] = true
	f.sent = append(f.sent, *m)
}

func (f *fakeAdapter) Edit(ctx context.Context, m *message.Outbound, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.editErr != nil {
		return f.editErr
	}
	f.edits[id] = m.Text
	return nil
}

func (f *fakeAdapter) Sent() []message.Outbound {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]message.Outbound(nil), f.sent...)
}

func (f *fakeAdapter) waitSent(t *testing.T, n int) []message.Outbound {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if s := f.Sent(); len(s) >= n {
			return s
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("got %d sends, want %d: %+v", len(f.Sent()), n, f.Sent())
		}
	}
}

// fakeAgent answers "re: <text>" after an optional gate; it checks that a
// session never has two turns at once.
type fakeAgent struct {
	keeps bool

	mu       sync.Mutex
	active   map[string]int
	calls    []agent.Request
	gate     chan struct{} // if non-nil, turns wait for a value or ctx
	errs     []error
	started  chan string
	delay    time.Duration
	overlaps int
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{active: map[string]int{}, started: make(chan string, 10000)}
}

func (a *fakeAgent) KeepsHistory() bool { return a.keeps }

func (a *fakeAgent) Complete(ctx context.Context, req agent.Request, ev agent.Events) (string, error) {
	a.mu.Lock()
	a.calls = append(a.calls, req)
	a.active[req.SessionID]++
	if a.active[req.SessionID] > 1 {
		a.overlaps++
	}
	var err error
	if len(a.errs) > 0 {
		err, a.errs = a.errs[0], a.errs[1:]
	}
	gate, delay := a.gate, a.delay
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.active[req.SessionID]--
		a.mu.Unlock()
	}()
	last := req.Messages[len(req.Messages)-1].Content
	a.started <- last
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if err != nil {
		return "", err
	}
	reply := "re: " + last
	// Events callbacks are optional (agent.Events), as real agents treat them.
	for _, w := range strings.SplitAfter(reply, " ") {
		if ev.Delta != nil {
			ev.Delta(w)
		}
	}
	return reply, nil
}

func (a *fakeAgent) Calls() []agent.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]agent.Request(nil), a.calls...)
}

type env struct {
	t     *testing.T
	st    *store.Store
	path  string
	d     *Dispatcher
	ad    *fakeAdapter
	agent *fakeAgent
	m     *metrics.Metrics
	log   *logrus.Entry // quietLog() if nil
}

// tracked returns how many stored messages the dispatcher has in hand
// (queued, running or waiting for the end of their turn to be recorded).
func (e *env) tracked() int {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	return len(e.d.tracked)
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func newEnv(t *testing.T, opts Options, policy Policy) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	e := &env{t: t, path: path, ad: newFakeAdapter("p"), agent: newFakeAgent(), m: metrics.Nop()}
	e.open(opts, policy)
	return e
}

func (e *env) open(opts Options, policy Policy) {
	st, err := store.Open(context.Background(), e.path, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	if opts.InitialBackoff == 0 {
		opts.InitialBackoff = 10 * time.Millisecond
	}
	if opts.TurnRetryBackoff == 0 {
		opts.TurnRetryBackoff = 10 * time.Millisecond
	}
	log := e.log
	if log == nil {
		log = quietLog()
	}
	e.d = New(st, e.agent, map[string]Platform{"p": {Adapter: e.ad, Policy: policy, Idempotent: true}}, opts, log, e.m)
	if _, _, err := e.d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.close)
}

func (e *env) close() {
	if e.d != nil {
		e.d.Close()
		e.d = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
}

var allowAll = Policy{AllowAll: true, Unauthorized: "reply", UnauthorizedText: "no", GroupSessionsPerUser: true}

func in(event, chat, sender, text string) *message.Inbound {
	return &message.Inbound{Platform: "p", EventID: event, ChatID: chat, ChatType: message.ChatDirect, SenderID: sender, MessageID: "pm-" + event, Text: text}
}

func (e *env) deliver(m *message.Inbound) {
	e.t.Helper()
	if err := e.d.Deliver(context.Background(), m); err != nil {
		e.t.Fatalf("Deliver(%s): %v", m.EventID, err)
	}
}

func TestEchoFlowAndDedupe(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.deliver(in("1", "c", "u", "hello"))
	e.deliver(in("1", "c", "u", "hello")) // platform redelivery
	sent := e.ad.waitSent(t, 1)
	if sent[0].Text != "re: hello" || sent[0].ReplyTo != "pm-1" || sent[0].IdempotencyKey != message.IdempotencyKey("p", "1", 1) {
		t.Fatalf("sent %+v", sent[0])
	}
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("agent called %d times for one message delivered twice", n)
	}
}

func TestPerSessionOrderOneTurnAtATime(t *testing.T) {
	e := newEnv(t, Options{MaxConcurrentTurns: 8}, allowAll)
	e.agent.delay = time.Millisecond
	const sessions, perSession = 20, 15
	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < perSession; i++ {
				e.deliver(in(fmt.Sprintf("%d-%d", s, i), fmt.Sprint("chat", s), "u", fmt.Sprintf("s%d m%02d", s, i)))
			}
		}(s)
	}
	wg.Wait()
	sent := e.ad.waitSent(t, sessions*perSession)
	if e.agent.overlaps != 0 {
		t.Fatalf("%d times a session had two turns at once", e.agent.overlaps)
	}
	last := map[string]string{}
	for _, m := range sent {
		if prev := last[m.ChatID]; prev != "" && m.Text < prev {
			t.Fatalf("chat %s: %q delivered after %q", m.ChatID, m.Text, prev)
		}
		last[m.ChatID] = m.Text
	}
}

func TestConcurrencyCap(t *testing.T) {
	e := newEnv(t, Options{MaxConcurrentTurns: 2}, allowAll)
	e.agent.gate = make(chan struct{})
	for i := 0; i < 5; i++ {
		e.deliver(in(fmt.Sprint(i), fmt.Sprint("c", i), "u", "x"))
	}
	<-e.agent.started
	<-e.agent.started
	select {
	case s := <-e.agent.started:
		t.Fatalf("third turn %q started with a cap of 2", s)
	case <-time.After(50 * time.Millisecond):
	}
	if st := e.d.Stats(); st.TurnsInFlight != 2 || st.Queued != 3 {
		t.Fatalf("stats %+v, want 2 running 3 queued", st)
	}
	close(e.agent.gate)
	e.ad.waitSent(t, 5)
}

func TestBusyPolicies(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.agent.gate = make(chan struct{}, 10)
		e.deliver(in("1", "c", "u", "first"))
		<-e.agent.started
		e.deliver(in("2", "c", "u", "second"))
		e.agent.gate <- struct{}{}
		e.agent.gate <- struct{}{}
		sent := e.ad.waitSent(t, 2)
		if sent[0].Text != "re: first" || sent[1].Text != "re: second" {
			t.Fatalf("sent %q, %q", sent[0].Text, sent[1].Text)
		}
	})
	t.Run("interrupt", func(t *testing.T) {
		e := newEnv(t, Options{BusyPolicy: "interrupt"}, allowAll)
		e.agent.gate = make(chan struct{}, 10)
		e.deliver(in("1", "c", "u", "first"))
		<-e.agent.started
		e.deliver(in("2", "c", "u", "second"))
		<-e.agent.started
		e.agent.gate <- struct{}{}
		sent := e.ad.waitSent(t, 1)
		if len(sent) != 1 || sent[0].Text != "re: second" {
			t.Fatalf("sent %+v, want only the reply to the second", sent)
		}
		waitPending(t, e.st, 0)
	})
}

func waitPending(t *testing.T, st *store.Store, want int) {
	t.Helper()
	var s store.Stats
	if !testwait.Until(testwait.Timeout, func() bool {
		var err error
		s, err = st.Stats(context.Background())
		return err == nil && s.PendingInbound == want
	}) {
		t.Fatalf("pending inbound = %d, want %d", s.PendingInbound, want)
	}
}

func TestCommandsBypassQueue(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.agent.gate = make(chan struct{})
	e.deliver(in("1", "c", "u", "long question"))
	<-e.agent.started
	e.deliver(in("2", "c", "u", "queued one"))
	e.deliver(in("3", "c", "u", "/status@herald_bot"))
	sent := e.ad.waitSent(t, 1)
	if !strings.HasPrefix(sent[0].Text, "Working on a reply") || !strings.Contains(sent[0].Text, "1 message queued") {
		t.Fatalf("/status answered %q", sent[0].Text)
	}
	e.deliver(in("4", "c", "u", "/help"))
	if s := e.ad.waitSent(t, 2); !strings.Contains(s[1].Text, "/new") {
		t.Fatalf("/help answered %q", s[1].Text)
	}
	e.deliver(in("5", "c", "u", "/stop"))
	if s := e.ad.waitSent(t, 3); s[2].Text != "Stopped. 1 queued message dropped." {
		t.Fatalf("/stop answered %q", s[2].Text)
	}
	waitPending(t, e.st, 0)
	// The cancelled turn's reply never arrives, the queued one never runs.
	e.deliver(in("6", "c", "u", "/stop"))
	if s := e.ad.waitSent(t, 4); s[3].Text != "Nothing to stop." {
		t.Fatalf("second /stop answered %q", s[3].Text)
	}
	for _, c := range e.agent.Calls() {
		if strings.Contains(c.Messages[len(c.Messages)-1].Content, "queued one") {
			t.Fatal("a message dropped by /stop reached the agent")
		}
	}
}

func TestNewResetsHistory(t *testing.T) {
	e := newEnv(t, Options{HistoryMessages: 10, SystemPrompt: "be brief"}, allowAll)
	e.deliver(in("1", "c", "u", "one"))
	e.ad.waitSent(t, 1)
	e.deliver(in("2", "c", "u", "two"))
	e.ad.waitSent(t, 2)
	calls := e.agent.Calls()
	if got := len(calls[1].Messages); got != 4 { // system, user one, assistant, user two
		t.Fatalf("second turn sent %d messages, want 4: %+v", got, calls[1].Messages)
	}
	e.deliver(in("3", "c", "u", "/new"))
	if s := e.ad.waitSent(t, 3); s[2].Text != "Started a new conversation." {
		t.Fatalf("/new answered %q", s[2].Text)
	}
	e.deliver(in("4", "c", "u", "three"))
	e.ad.waitSent(t, 4)
	calls = e.agent.Calls()
	last := calls[len(calls)-1]
	if len(last.Messages) != 2 || !strings.HasSuffix(last.SessionID, "#1") {
		t.Fatalf("after /new: session %q messages %+v", last.SessionID, last.Messages)
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, Options{}, Policy{AllowedUsers: []string{"alice"}, Unauthorized: "reply", UnauthorizedText: "not allowed", GroupSessionsPerUser: true})
	e.deliver(in("1", "c1", "mallory", "hi"))
	e.deliver(in("2", "c1", "mallory", "hi again")) // refused silently: one refusal per interval
	g := in("3", "g", "mallory", "group hi")
	g.ChatType = message.ChatGroup
	e.deliver(g)
	e.deliver(in("4", "c2", "alice", "hello"))
	e.ad.waitSent(t, 2)
	// Every message handled and every reply delivered: nothing else can
	// be sent any more.
	waitDelivered(t, e.st, 1)
	sent := e.ad.Sent()
	if len(sent) != 2 {
		t.Fatalf("sent %+v, want one refusal and one reply", sent)
	}
	var refusal, reply int
	for _, s := range sent {
		switch {
		case s.Text == "not allowed" && s.ChatID == "c1":
			refusal++
		case s.Text == "re: hello":
			reply++
		}
	}
	if refusal != 1 || reply != 1 {
		t.Fatalf("sent %+v", sent)
	}
	for _, c := range e.agent.Calls() {
		if strings.Contains(c.Messages[0].Content, "hi") {
			t.Fatal("an unauthorized message reached the agent")
		}
	}
}

func TestDeliveryRetriesAndGiveUp(t *testing.T) {
	e := newEnv(t, Options{MaxAttempts: 3}, allowAll)
	e.ad.fail = []error{
		fmt.Errorf("x: %w", adapter.ErrTemporary),
		&adapter.RetryAfterError{After: 100 * time.Millisecond, Err: adapter.ErrRateLimited},
	}
	start := time.Now()
	e.deliver(in("1", "c", "u", "hi"))
	e.ad.waitSent(t, 1)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("delivered after %v, before the platform's Retry-After of 100ms", d)
	}
	e.ad.mu.Lock()
	e.ad.fail = []error{fmt.Errorf("chat gone: %w", adapter.ErrPermanent)}
	e.ad.mu.Unlock()
	e.deliver(in("2", "c", "u", "again"))
	waitOutbox(t, e.st, 0, 1)
}

func waitOutbox(t *testing.T, st *store.Store, pending, failed int) {
	t.Helper()
	var s store.Stats
	if !testwait.Until(testwait.Timeout, func() bool {
		var err error
		s, err = st.Stats(context.Background())
		return err == nil && s.PendingOutbox == pending && s.FailedOutbox == failed
	}) {
		t.Fatalf("outbox pending=%d failed=%d, want %d/%d", s.PendingOutbox, s.FailedOutbox, pending, failed)
	}
}

// waitDelivered waits until no message is pending and no reply part waits,
// with at least one turn finished.
func waitDelivered(t *testing.T, st *store.Store, turns int) {
	t.Helper()
	var s store.Stats
	if !testwait.Until(testwait.Timeout, func() bool {
		var err error
		s, err = st.Stats(context.Background())
		return err == nil && s.PendingInbound == 0 && s.PendingOutbox == 0
	}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestAmbiguousDelivery(t *testing.T) {
	t.Run("idempotent platform retries", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.ad.fail = []error{adapter.ErrAmbiguous}
		e.deliver(in("1", "c", "u", "hi"))
		e.ad.waitSent(t, 1)
		waitDelivered(t, e.st, 1)
		if n := len(e.ad.Sent()); n != 1 {
			t.Fatalf("platform shows %d messages, want 1", n)
		}
	})
	t.Run("non-idempotent platform gives up", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.d.SetPlatforms(map[string]Platform{"p": {Adapter: e.ad, Policy: allowAll, Idempotent: false}})
		e.ad.fail = []error{adapter.ErrAmbiguous}
		e.deliver(in("1", "c", "u", "hi"))
		waitOutbox(t, e.st, 0, 1)
	})
}

func TestAgentFailures(t *testing.T) {
	t.Run("unavailable then ok", func(t *testing.T) {
		e := newEnv(t, Options{TurnRetries: 2}, allowAll)
		e.agent.errs = []error{fmt.Errorf("agent: %w", agent.ErrUnavailable)}
		e.deliver(in("1", "c", "u", "hi"))
		if s := e.ad.waitSent(t, 1); s[0].Text != "re: hi" {
			t.Fatalf("sent %q", s[0].Text)
		}
	})
	t.Run("unavailable too often", func(t *testing.T) {
		e := newEnv(t, Options{TurnRetries: 1}, allowAll)
		e.agent.errs = []error{agent.ErrUnavailable, agent.ErrUnavailable}
		e.deliver(in("1", "c", "u", "hi"))
		if s := e.ad.waitSent(t, 1); !strings.Contains(s[0].Text, "not reachable") {
			t.Fatalf("sent %q", s[0].Text)
		}
		waitPending(t, e.st, 0)
	})
	t.Run("rejected", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.agent.errs = []error{agent.ErrRejected}
		e.deliver(in("1", "c", "u", "hi"))
		if s := e.ad.waitSent(t, 1); !strings.Contains(s[0].Text, "could not answer") {
			t.Fatalf("sent %q", s[0].Text)
		}
	})
}

func TestRecoveryAfterRestart(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.agent.gate = make(chan struct{})
	e.deliver(in("1", "c", "u", "interrupted by a crash"))
	<-e.agent.started
	// The process dies: nothing is recorded for the running turn.
	e.close()
	e.agent = newFakeAgent()
	e.ad = newFakeAdapter("p")
	e.open(Options{}, allowAll)
	sent := e.ad.waitSent(t, 1)
	if sent[0].Text != "re: interrupted by a crash" {
		t.Fatalf("after restart sent %q", sent[0].Text)
	}
}

func TestUndeliveredRepliesRecovered(t *testing.T) {
	e := newEnv(t, Options{MaxBackoff: time.Hour, InitialBackoff: time.Hour}, allowAll)
	e.ad.fail = []error{adapter.ErrTemporary}
	e.deliver(in("1", "c", "u", "hi"))
	waitRetry(t, e.st)
	e.close()
	e.ad = newFakeAdapter("p")
	e.open(Options{}, allowAll)
	// The recorded next attempt is an hour away: the delivery loop waits
	// for it instead of sending.
	waitParked(t, "dispatch.(*Dispatcher).deliverLoop")
	if n := len(e.ad.Sent()); n != 0 {
		t.Fatalf("retry ran before its time: %d sends", n)
	}
	if st := e.d.Stats(); st.RepliesPending != 1 {
		t.Fatalf("stats %+v, want 1 reply pending", st)
	}
}

// waitParked waits until a goroutine whose innermost frame is fn blocks in
// a select: the event that shows a loop decided to wait (for a timer, a
// drain, its context) rather than act.
func waitParked(t *testing.T, fn string) {
	t.Helper()
	testwait.For(t, fn+" blocked in a select", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			lines := strings.SplitN(g, "\n", 3)
			if len(lines) >= 2 && strings.Contains(lines[0], "[select") && strings.HasPrefix(lines[1], "github.com/heraldgw/herald/pkg/"+fn+"(") {
				return true
			}
		}
		return false
	})
}

func waitRetry(t *testing.T, st *store.Store) {
	t.Helper()
	testwait.For(t, "a recorded retry", func() bool {
		ob, _ := st.PendingOutbox(context.Background())
		return len(ob) == 1 && ob[0].Attempts == 1
	})
}

func TestDrain(t *testing.T) {
	t.Run("finishes running turns", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.agent.delay = 100 * time.Millisecond
		e.deliver(in("1", "c", "u", "slow"))
		<-e.agent.started
		e.d.CloseIntake()
		if err := e.d.Deliver(context.Background(), in("2", "c", "u", "late")); !errors.Is(err, adapter.ErrStopping) {
			t.Fatalf("Deliver after CloseIntake = %v, want ErrStopping", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.d.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(e.ad.Sent()); n != 1 {
			t.Fatalf("sent %d replies during drain, want 1", n)
		}
		waitPending(t, e.st, 0)
	})
	t.Run("deadline leaves work pending", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		e.agent.gate = make(chan struct{}) // never opens
		e.deliver(in("1", "c", "u", "never finishes"))
		e.deliver(in("2", "c", "u", "queued behind it"))
		<-e.agent.started
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := e.d.Drain(ctx); err == nil {
			t.Fatal("drain reported success with a hung turn")
		}
		waitPending(t, e.st, 2)
	})
}

func TestStreamEdits(t *testing.T) {
	e := newEnv(t, Options{StreamEdits: true, StreamEditInterval: time.Nanosecond}, allowAll)
	e.deliver(in("1", "c", "u", "a b c d"))
	e.ad.waitSent(t, 1)
	waitDelivered(t, e.st, 1)
	sent := e.ad.Sent()
	if len(sent) != 1 || !strings.HasSuffix(sent[0].Text, "▍") {
		t.Fatalf("sent %+v, want one streamed placeholder", sent)
	}
	e.ad.mu.Lock()
	final := e.ad.edits["m1"]
	e.ad.mu.Unlock()
	if final != "re: a b c d" {
		t.Fatalf("final edit %q", final)
	}
}

func TestStreamEditRefusedFallsBackToSend(t *testing.T) {
	e := newEnv(t, Options{StreamEdits: true, StreamEditInterval: time.Nanosecond}, allowAll)
	e.ad.editErr = fmt.Errorf("edit limit reached: %w", adapter.ErrPermanent)
	e.deliver(in("1", "c", "u", "a b c d"))
	sent := e.ad.waitSent(t, 2)
	waitDelivered(t, e.st, 1)
	if sent[1].Text != "re: a b c d" {
		t.Fatalf("sent %+v, want the final reply sent anew after the edit was refused", sent)
	}
	waitOutbox(t, e.st, 0, 0)
}

func TestChunking(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.ad.limit = 20
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: e.ad, Policy: allowAll, Idempotent: true}})
	e.deliver(in("1", "c", "u", strings.Repeat("word ", 20)))
	e.ad.waitSent(t, 4)
	waitDelivered(t, e.st, 1)
	sent := e.ad.Sent()
	if len(sent) < 4 {
		t.Fatalf("%d parts", len(sent))
	}
	for i, s := range sent {
		if s.Part != i+1 || s.Parts != len(sent) || s.IdempotencyKey != message.IdempotencyKey("p", "1", i+1) {
			t.Fatalf("part %d: %+v", i, s)
		}
	}
}

// TestMaxReplyParts: a reply that would take more than MaxReplyParts
// messages is cut to that many, the last one ending with CutMarker.
func TestMaxReplyParts(t *testing.T) {
	e := newEnv(t, Options{MaxReplyParts: 3}, allowAll)
	e.ad.limit = 100
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: e.ad, Policy: allowAll, Idempotent: true}})
	e.deliver(in("1", "c", "u", strings.Repeat("word ", 1000)))
	waitDelivered(t, e.st, 1)
	sent := e.ad.Sent()
	if len(sent) != 3 {
		t.Fatalf("%d parts sent, want 3", len(sent))
	}
	for i, s := range sent {
		if n := utf8.RuneCountInString(s.Text); n > 100 {
			t.Errorf("part %d has %d characters, limit 100: %q", i+1, n, s.Text)
		}
		if s.Part != i+1 || s.Parts != 3 {
			t.Errorf("part %d: Part %d of %d", i+1, s.Part, s.Parts)
		}
	}
	if !strings.HasSuffix(sent[2].Text, CutMarker) || !strings.HasPrefix(sent[2].Text, "word") {
		t.Fatalf("last part %q does not end with the cut marker", sent[2].Text)
	}
	if strings.Contains(sent[1].Text, CutMarker) {
		t.Fatalf("the marker is on a part before the last: %q", sent[1].Text)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	tests := []struct {
		name string
		m    *message.Inbound
		want error
	}{
		{"missing sender", &message.Inbound{Platform: "p", EventID: "1", ChatID: "c", ChatType: message.ChatDirect}, message.ErrInvalid},
		{"oversized", &message.Inbound{Platform: "p", EventID: "2", ChatID: "c", ChatType: message.ChatDirect, SenderID: "u", Text: strings.Repeat("x", message.MaxTextBytes+1)}, message.ErrInvalid},
		{"bad chat type", &message.Inbound{Platform: "p", EventID: "3", ChatID: "c", ChatType: "weird", SenderID: "u"}, message.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.d.Deliver(context.Background(), tt.m); !errors.Is(err, tt.want) {
				t.Fatalf("Deliver = %v, want %v", err, tt.want)
			}
		})
	}
	unknown := in("4", "c", "u", "/frobnicate now")
	e.deliver(unknown)
	if s := e.ad.waitSent(t, 1); s[0].Text != "re: /frobnicate now" {
		t.Fatalf("unknown command answered %q, want it passed to the agent", s[0].Text)
	}
	other := in("5", "c", "u", "x")
	other.Platform = "nope"
	if err := e.d.Deliver(context.Background(), other); err == nil {
		t.Fatal("message from an unknown platform accepted")
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := e.d.Check(ctx); err != nil {
		t.Fatal(err)
	}
	e.d.mu.Lock()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err := e.d.Check(ctx2)
	e.d.mu.Unlock()
	if err == nil {
		t.Fatal("Check passed while the dispatcher lock was held")
	}
}

func TestParseCommand(t *testing.T) {
	tests := map[string]string{
		"/new": "new", "/reset": "reset", "/STOP": "stop", "/status@gw_bot": "status",
		"  /help  ": "help", "/stop please": "stop", "/unknown": "", "hello /stop": "", "/": "", "": "",
	}
	for in, want := range tests {
		if got := ParseCommand(in); got != want {
			t.Errorf("ParseCommand(%q) = %q, want %q", in, got, want)
		}
	}
}

// A message committed after its Deliver gave up waiting is stored but was
// never dispatched: the platform's redelivery must dispatch it (not just
// acknowledge the duplicate), and so must the sweep if none comes.
func TestOrphanedMessagesAreDispatched(t *testing.T) {
	t.Run("on redelivery", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		m := in("1", "c", "u", "lost in the commit")
		if _, _, err := e.st.AddInbound(context.Background(), m.SessionKey(true), m, store.Pending); err != nil {
			t.Fatal(err)
		}
		e.deliver(in("1", "c", "u", "lost in the commit"))
		if s := e.ad.waitSent(t, 1); s[0].Text != "re: lost in the commit" {
			t.Fatalf("sent %q", s[0].Text)
		}
		e.deliver(in("1", "c", "u", "lost in the commit")) // a further redelivery: tracked, no second turn
		waitDelivered(t, e.st, 1)
		if n := len(e.agent.Calls()); n != 1 {
			t.Fatalf("%d agent calls", n)
		}
	})
	t.Run("by the sweep", func(t *testing.T) {
		e := newEnv(t, Options{}, allowAll)
		m := in("2", "c", "u", "never redelivered")
		if _, _, err := e.st.AddInbound(context.Background(), m.SessionKey(true), m, store.Pending); err != nil {
			t.Fatal(err)
		}
		e.d.sweepOrphans() // first sighting: may still be on its way
		// The sweep enqueues synchronously: what it did not track now, it
		// did not dispatch.
		if n := e.tracked(); n != 0 {
			t.Fatalf("dispatched at the first sighting: %d tracked", n)
		}
		e.d.sweepOrphans()
		if s := e.ad.waitSent(t, 1); s[0].Text != "re: never redelivered" {
			t.Fatalf("sent %q", s[0].Text)
		}
		waitDelivered(t, e.st, 1)
		testwait.For(t, "the turn to end", func() bool { return e.tracked() == 0 })
		e.d.sweepOrphans()
		e.d.sweepOrphans()
		if n := e.tracked(); n != 0 {
			t.Fatalf("a finished message was swept again: %d tracked", n)
		}
		if n := len(e.agent.Calls()); n != 1 {
			t.Fatalf("%d agent calls: a finished message was swept again", n)
		}
	})
}
