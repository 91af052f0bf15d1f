// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Backend is a store under test.
type Backend interface {
	dispatch.Store
	Close() error
}

// Opener opens the backend on one and the same storage each time it is
// called (a reopen finds what the previous one stored), with clock now.
// The opener closes what it opened when the test ends.
type Opener func(t *testing.T, now func() time.Time) Backend

// Run runs every contract test; fresh returns an opener on new, empty
// storage.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"AddInboundDedupe", testAddInboundDedupe},
		{"InboundIDAndIsPending", testInboundIDAndIsPending},
		{"FinishAtomicAndIdempotent", testFinishAtomicAndIdempotent},
		{"FinishRefusedKeepsHistory", testFinishRefused},
		{"FinishRecordIDs", testFinishRecordIDs},
		{"SetState", testSetState},
		{"HistoryLimitAndReset", testHistoryLimitAndReset},
		{"RetryGiveUpStats", testRetryGiveUpStats},
		{"UnknownOutboxID", testUnknownOutboxID},
		{"ConcurrentAdds", testConcurrentAdds},
		{"PendingAfterReopen", testPendingAfterReopen},
		{"Prune", testPrune},
		{"StatsOldestOutbox", testStatsOldestOutbox},
		{"AttemptStartedSurvivesReopen", testAttemptStartedSurvivesReopen},
		{"AttemptSettled", testAttemptSettled},
		{"AddSend", testAddSend},
		{"BudgetWindows", testBudgetWindows},
		{"MediaFetchDurableAndPruned", testMediaFetch},
		{"RunLink", testRunLink},
		{"PendingApproval", testPendingApproval},
		{"RerunAttempt", testRerunAttempt},
		{"Pairing", testPairing},
		{"PruneHistoryKeepsNewest", testPruneHistoryKeepsNewest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, fresh(t)) })
	}
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var bg = context.Background()

func msg(event, chat, text string) *message.Inbound {
	return &message.Inbound{Platform: "p", EventID: event, ChatID: chat, ChatType: message.ChatDirect, SenderID: "u", Text: text,
		ReceivedAt: time.Now().Truncate(time.Millisecond)}
}

// must takes a call's two results and fails the test on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func add(t *testing.T, s Backend, event string) int64 {
	t.Helper()
	id, dup, err := s.AddInbound(bg, "k", msg(event, "c", "hi "+event), store.Pending)
	if err != nil || dup {
		t.Fatalf("add %s: dup=%v err=%v", event, dup, err)
	}
	return id
}

// queueReplies stores n reply parts for one new inbound message.
func queueReplies(t *testing.T, s Backend, event string, n int) []store.OutboxRecord {
	t.Helper()
	in := msg(event, "c", "hi")
	id, _, err := s.AddInbound(bg, "k", in, store.Pending)
	noErr(t, err)
	var replies []message.Outbound
	for i := 0; i < n; i++ {
		r := in.ReplyTo()
		r.Text = fmt.Sprint("part ", i)
		r.Part = i
		r.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, i)
		replies = append(replies, r)
	}
	recs, err := s.Finish(bg, id, store.Done, "k", 0, replies, nil)
	if err != nil || len(recs) != n {
		t.Fatalf("finish: %d records, %v", len(recs), err)
	}
	return recs
}

func testAddInboundDedupe(t *testing.T, open Opener) {
	s := open(t, nil)
	id1, dup, err := s.AddInbound(bg, "k", msg("e1", "c", "hi"), store.Pending)
	if err != nil || dup {
		t.Fatalf("first add: id=%d dup=%v err=%v", id1, dup, err)
	}
	id2, dup, err := s.AddInbound(bg, "k", msg("e1", "c", "hi again"), store.Pending)
	if err != nil || !dup || id2 != id1 {
		t.Fatalf("redelivery: id=%d dup=%v err=%v, want id=%d dup=true", id2, dup, err, id1)
	}
	other := msg("e1", "c", "x")
	other.Platform = "q"
	if _, dup, err := s.AddInbound(bg, "k2", other, store.Pending); err != nil || dup {
		t.Fatalf("same event id on another platform: dup=%v err=%v", dup, err)
	}
	// Any string is an event id.
	odd := msg("", "c", "empty event id")
	if _, dup, err := s.AddInbound(bg, "k", odd, store.Pending); err != nil || dup {
		t.Fatalf("empty event id: dup=%v err=%v", dup, err)
	}
	odd = msg("a.b *>/\x00ü", "c", "odd event id")
	if _, dup, err := s.AddInbound(bg, "k", odd, store.Pending); err != nil || dup {
		t.Fatalf("odd event id: dup=%v err=%v", dup, err)
	}
	p := must(s.Pending(bg))(t)
	if len(p) != 4 || p[0].Msg.Text != "hi" || p[0].ID != id1 {
		t.Fatalf("pending = %+v, want 4 with the first text kept", p)
	}
	for i := 1; i < len(p); i++ {
		if p[i].ID <= p[i-1].ID {
			t.Fatalf("pending not in arrival order: %d after %d", p[i].ID, p[i-1].ID)
		}
	}
	// Still deduplicated after a reopen.
	s.Close()
	s = open(t, nil)
	if id, dup, err := s.AddInbound(bg, "k", msg("e1", "c", "third"), store.Pending); err != nil || !dup || id != id1 {
		t.Fatalf("after reopen: id=%d dup=%v err=%v", id, dup, err)
	}
}

func testInboundIDAndIsPending(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "e1")
	if got, err := s.InboundID(bg, "p", "e1"); err != nil || got != id {
		t.Fatalf("InboundID = %d %v, want %d", got, err, id)
	}
	if _, err := s.InboundID(bg, "p", "nope"); !errors.Is(err, store.ErrNoInbound) {
		t.Fatalf("InboundID of an unknown event: %v", err)
	}
	if ok, err := s.IsPending(bg, id); !ok || err != nil {
		t.Fatalf("IsPending = %v %v", ok, err)
	}
	if ok, err := s.IsPending(bg, id+1000); ok || err != nil {
		t.Fatalf("IsPending of an unknown id = %v %v", ok, err)
	}
	refused, _, err := s.AddInbound(bg, "k", msg("e2", "c", "no"), store.Refused)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsPending(bg, refused); ok || err != nil {
		t.Fatalf("a refused message is pending: %v %v", ok, err)
	}
	if _, err := s.Finish(bg, id, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsPending(bg, id); ok || err != nil {
		t.Fatalf("finished message is pending: %v %v", ok, err)
	}
}

func testFinishAtomicAndIdempotent(t *testing.T, open Opener) {
	s := open(t, nil)
	in := msg("e1", "c", "hi")
	id, _, err := s.AddInbound(bg, "k", in, store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	reply := in.ReplyTo()
	reply.Text = "hello"
	reply.IdempotencyKey = message.IdempotencyKey("p", "e1", 1)
	hist := []store.HistoryEntry{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}
	recs, err := s.Finish(bg, id, store.Done, "k", 0, []message.Outbound{reply}, hist)
	if err != nil || len(recs) != 1 || recs[0].InboundID != id || recs[0].SessionKey != "k" {
		t.Fatalf("finish: %+v %v", recs, err)
	}
	// A second finish of the same turn (re-run after a crash, or retried
	// after an error although the first one was stored) must not queue
	// the reply twice, nor append the exchange to the history twice.
	recs2, err := s.Finish(bg, id, store.Done, "k", 0, []message.Outbound{reply}, hist)
	if err != nil || len(recs2) != 0 {
		t.Fatalf("second finish queued %d replies (err %v), want 0", len(recs2), err)
	}
	if p := must(s.Pending(bg))(t); len(p) != 0 {
		t.Fatalf("pending after finish: %d", len(p))
	}
	ob := must(s.PendingOutbox(bg))(t)
	if len(ob) != 1 || ob[0].Msg.Text != "hello" || ob[0].ID != recs[0].ID || ob[0].InboundID != id {
		t.Fatalf("outbox = %+v, want the record %+v", ob, recs[0])
	}
	h := must(s.History(bg, "k", 0, 10))(t)
	if len(h) != 2 || h[1].Content != "hello" {
		t.Fatalf("history = %+v", h)
	}
	if err := s.Delivered(bg, ob[0].ID, 1, "pm1"); err != nil {
		t.Fatal(err)
	}
	if ob := must(s.PendingOutbox(bg))(t); len(ob) != 0 {
		t.Fatalf("outbox after delivery: %d", len(ob))
	}
}

// A message refused at intake gets its refusal reply and history through
// Finish(Refused) although it is not pending.
func testFinishRefused(t *testing.T, open Opener) {
	s := open(t, nil)
	in := msg("e1", "c", "hi")
	id, _, err := s.AddInbound(bg, "k", in, store.Refused)
	if err != nil {
		t.Fatal(err)
	}
	r := in.ReplyTo()
	r.Text, r.IdempotencyKey = "not allowed", "refuse-1"
	recs, err := s.Finish(bg, id, store.Refused, "k", 0, []message.Outbound{r}, []store.HistoryEntry{{Role: "user", Content: "x"}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("finish refused: %+v %v", recs, err)
	}
	if h := must(s.History(bg, "k", 0, 10))(t); len(h) != 1 {
		t.Fatalf("history = %+v", h)
	}
}

// The ids Finish returns are the ids the outbox lists, in order, for
// several parts at once, and a finish without an inbound message (a
// command) queues its parts too.
func testFinishRecordIDs(t *testing.T, open Opener) {
	s := open(t, nil)
	recs := queueReplies(t, s, "e1", 4)
	in := msg("cmd", "c", "/help")
	var parts []message.Outbound
	for i := 0; i < 2; i++ {
		r := in.ReplyTo()
		r.Text, r.IdempotencyKey = fmt.Sprint("help ", i), fmt.Sprint("help-", i)
		parts = append(parts, r)
	}
	more, err := s.Finish(bg, 0, store.Done, "k", 0, parts, []store.HistoryEntry{{Role: "user", Content: "/help"}})
	if err != nil || len(more) != 2 || more[0].InboundID != 0 {
		t.Fatalf("command finish: %+v %v", more, err)
	}
	recs = append(recs, more...)
	ob := must(s.PendingOutbox(bg))(t)
	if len(ob) != len(recs) {
		t.Fatalf("outbox has %d, want %d", len(ob), len(recs))
	}
	for i := range ob {
		if ob[i].ID != recs[i].ID || ob[i].Msg.Text != recs[i].Msg.Text {
			t.Fatalf("outbox[%d] = %d %q, Finish returned %d %q", i, ob[i].ID, ob[i].Msg.Text, recs[i].ID, recs[i].Msg.Text)
		}
	}
	// Each id addresses its own part.
	if err := s.Delivered(bg, recs[2].ID, 1, "m"); err != nil {
		t.Fatal(err)
	}
	ob = must(s.PendingOutbox(bg))(t)
	for _, r := range ob {
		if r.ID == recs[2].ID {
			t.Fatalf("delivered part %d still pending", r.ID)
		}
	}
	if len(ob) != len(recs)-1 {
		t.Fatalf("outbox has %d after one delivery, want %d", len(ob), len(recs)-1)
	}
}

func testSetState(t *testing.T, open Opener) {
	s := open(t, nil)
	a, b, c := add(t, s, "a"), add(t, s, "b"), add(t, s, "c")
	if err := s.SetState(bg, []int64{a, c}, store.Dropped); err != nil {
		t.Fatal(err)
	}
	p := must(s.Pending(bg))(t)
	if len(p) != 1 || p[0].ID != b {
		t.Fatalf("pending = %+v, want only %d", p, b)
	}
	// A dropped message's later Finish is a repeat: no history.
	if _, err := s.Finish(bg, a, store.Done, "k", 0, nil, []store.HistoryEntry{{Role: "user", Content: "late"}}); err != nil {
		t.Fatal(err)
	}
	if h := must(s.History(bg, "k", 0, 10))(t); len(h) != 0 {
		t.Fatalf("history of a dropped message: %+v", h)
	}
	if err := s.SetState(bg, nil, store.Dropped); err != nil {
		t.Fatal(err)
	}
}

func testHistoryLimitAndReset(t *testing.T, open Opener) {
	s := open(t, nil)
	for i := 0; i < 5; i++ {
		if _, err := s.Finish(bg, 0, store.Done, "k", 0, nil, []store.HistoryEntry{{Role: "user", Content: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	h := must(s.History(bg, "k", 0, 3))(t)
	if len(h) != 3 || h[0].Content != "2" || h[2].Content != "4" {
		t.Fatalf("history limit 3 = %+v, want 2,3,4", h)
	}
	gen, err := s.ResetSession(bg, "k")
	if err != nil || gen != 1 {
		t.Fatalf("reset: gen=%d err=%v", gen, err)
	}
	if gens := must(s.Generations(bg))(t); gens["k"] != 1 || len(gens) != 1 {
		t.Fatalf("generations = %v, want k: 1", gens)
	}
	if h := must(s.History(bg, "k", gen, 10))(t); len(h) != 0 {
		t.Fatalf("history after reset = %+v", h)
	}
	if gen, err := s.ResetSession(bg, "k"); err != nil || gen != 2 {
		t.Fatalf("second reset: gen=%d err=%v", gen, err)
	}
	s.Close()
	s = open(t, nil)
	if gens := must(s.Generations(bg))(t); gens["k"] != 2 {
		t.Fatalf("generations after reopen = %v", gens)
	}
}

func testRetryGiveUpStats(t *testing.T, open Opener) {
	s := open(t, nil)
	recs := queueReplies(t, s, "e1", 1)
	next := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := s.Retry(bg, recs[0].ID, 1, next, "boom"); err != nil {
		t.Fatal(err)
	}
	ob := must(s.PendingOutbox(bg))(t)
	if len(ob) != 1 || ob[0].Attempts != 1 || !ob[0].NextAt.Equal(next) {
		t.Fatalf("outbox after retry = %+v", ob)
	}
	if err := s.GiveUp(bg, recs[0].ID, 2, "permanent"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(bg)
	if err != nil || st.PendingOutbox != 0 || st.FailedOutbox != 1 || st.PendingInbound != 0 {
		t.Fatalf("stats = %+v err %v", st, err)
	}
	add(t, s, "e2")
	if st := must(s.Stats(bg))(t); st.PendingInbound != 1 || st.OldestPending.IsZero() {
		t.Fatalf("stats with a pending message = %+v", st)
	}
}

// An outcome for an unknown id is no error (the part was pruned).
func testUnknownOutboxID(t *testing.T, open Opener) {
	s := open(t, nil)
	recs := queueReplies(t, s, "e1", 1)
	for _, err := range []error{
		s.Delivered(bg, recs[0].ID+10000, 1, "x"),
		s.Retry(bg, recs[0].ID+10000, 1, time.Now(), "x"),
		s.GiveUp(bg, recs[0].ID+10000, 1, "x"),
	} {
		if err != nil {
			t.Fatalf("unknown id: %v", err)
		}
	}
	if ob := must(s.PendingOutbox(bg))(t); len(ob) != 1 {
		t.Fatalf("outbox = %+v", ob)
	}
}

func testConcurrentAdds(t *testing.T, open Opener) {
	s := open(t, nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	ids := make([]int64, 2*n)
	for i := 0; i < 2*n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Every event twice, concurrently: one stores it, the other
			// finds it.
			id, _, err := s.AddInbound(bg, "k", msg(fmt.Sprint(i/2), "c", "t"), store.Pending)
			ids[i] = id
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2*n; i += 2 {
		if ids[i] != ids[i+1] {
			t.Fatalf("event %d stored as %d and %d", i/2, ids[i], ids[i+1])
		}
	}
	if p := must(s.Pending(bg))(t); len(p) != n {
		t.Fatalf("stored %d, want %d", len(p), n)
	}
}

func testPendingAfterReopen(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "e")
	done := add(t, s, "done")
	if _, err := s.Finish(bg, done, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddInbound(bg, "k", msg("e2", "c", "t"), store.Pending); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("add after close: %v, want ErrClosed", err)
	}
	s = open(t, nil)
	p := must(s.Pending(bg))(t)
	if len(p) != 1 || p[0].ID != id || p[0].Msg.Text != "hi e" || p[0].SessionKey != "k" {
		t.Fatalf("pending after reopen = %+v", p)
	}
}

func testPrune(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "old")
	if _, err := s.Finish(bg, id, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	add(t, s, "pending")
	withReply := queueReplies(t, s, "replied", 1) // its part stays pending
	n, err := s.Prune(bg, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	if p := must(s.Pending(bg))(t); len(p) != 1 {
		t.Fatalf("pending after prune = %d", len(p))
	}
	// The pruned event is no longer deduplicated: that is the retention
	// window's meaning.
	if _, dup, err := s.AddInbound(bg, "k", msg("old", "c", "t"), store.Pending); dup || err != nil {
		t.Fatalf("pruned event: dup=%v err=%v", dup, err)
	}
	// The message with an undelivered part stays; once the part is
	// delivered both go.
	if _, dup, _ := s.AddInbound(bg, "k", msg("replied", "c", "t"), store.Pending); !dup {
		t.Fatal("message with a pending reply part was pruned")
	}
	if err := s.Delivered(bg, withReply[0].ID, 1, "m"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(bg, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("second prune = %d, %v; want 2 (the part and its message)", n, err)
	}
	if _, dup, _ := s.AddInbound(bg, "k", msg("replied", "c", "t"), store.Pending); dup {
		t.Fatal("message still stored after its part was delivered and pruned")
	}
	if n, err := s.Prune(bg, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("prune of nothing old = %d, %v", n, err)
	}
	if _, err := s.Compact(bg); err != nil {
		t.Fatal(err)
	}
}

func testStatsOldestOutbox(t *testing.T, open Opener) {
	s := open(t, nil)
	if st, err := s.Stats(bg); err != nil || !st.OldestOutbox.IsZero() || st.PendingOutbox != 0 {
		t.Fatalf("empty store: %+v %v", st, err)
	}
	before := time.Now().Truncate(time.Millisecond)
	recs := queueReplies(t, s, "e1", 1)
	st, err := s.Stats(bg)
	if err != nil || st.PendingOutbox != 1 || st.OldestOutbox.Before(before) || st.OldestOutbox.After(time.Now()) {
		t.Fatalf("stats = %+v err %v, want the oldest reply stored after %v", st, err, before)
	}
	if err := s.Delivered(bg, recs[0].ID, 1, "m1"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(bg); err != nil || !st.OldestOutbox.IsZero() {
		t.Fatalf("after delivery: %+v %v", st, err)
	}
}

// A started attempt is durable: a store opened anew (the next instance
// after a SIGKILL) finds it, with the time of the earliest attempt.
func testAttemptStartedSurvivesReopen(t *testing.T, open Opener) {
	s := open(t, nil)
	recs := queueReplies(t, s, "e1", 2)
	first := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	if err := s.AttemptStarted(bg, recs[0].ID, first); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptStarted(bg, recs[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, nil)
	got := must(s.StartedAttempts(bg))(t)
	if len(got) != 1 || !got[recs[0].ID].Equal(first) {
		t.Fatalf("started attempts after reopen = %v, want only record %d at %v", got, recs[0].ID, first)
	}
}

// Every way an outcome becomes known removes the mark: delivered, given
// up, failed before reaching the platform, pruned. A retry scheduled while
// the outcome is still unknown keeps it.
func testAttemptSettled(t *testing.T, open Opener) {
	s := open(t, nil)
	recs := queueReplies(t, s, "e1", 5)
	now := time.Now()
	for _, r := range recs {
		if err := s.AttemptStarted(bg, r.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := must(s.StartedAttempts(bg))(t); len(got) != 5 {
		t.Fatalf("%d marks, want 5", len(got))
	}
	noErr(t, s.Delivered(bg, recs[0].ID, 1, "ts1"))
	noErr(t, s.GiveUp(bg, recs[1].ID, 1, "outcome unknown"))
	noErr(t, s.AttemptFailed(bg, recs[2].ID))
	noErr(t, s.Retry(bg, recs[3].ID, 1, now.Add(time.Second), "outcome unknown"))
	got := must(s.StartedAttempts(bg))(t)
	if len(got) != 2 || got[recs[3].ID].IsZero() || got[recs[4].ID].IsZero() {
		t.Fatalf("marks = %v, want records %d (retry of an unknown outcome) and %d (untouched)", got, recs[3].ID, recs[4].ID)
	}
	// A new attempt after AttemptFailed is marked again.
	noErr(t, s.AttemptStarted(bg, recs[2].ID, now))
	if got := must(s.StartedAttempts(bg))(t); len(got) != 3 {
		t.Fatalf("marks after a new attempt = %v", got)
	}
	for i, r := range recs[2:] {
		noErr(t, s.Delivered(bg, r.ID, 2, fmt.Sprint("ts", i)))
	}
	if err := s.AttemptStarted(bg, recs[4].ID, now); err != nil { // a stray mark on a finished record
		t.Fatal(err)
	}
	if got := must(s.StartedAttempts(bg))(t); len(got) != 0 {
		t.Fatalf("marks of finished records reported: %v", got)
	}
	if _, err := s.Prune(bg, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := must(s.StartedAttempts(bg))(t); len(got) != 0 {
		t.Fatalf("marks after pruning every record: %v", got)
	}
}

func testAddSend(t *testing.T, open Opener) {
	s := open(t, nil)
	var parts []message.Outbound
	for i := 0; i < 3; i++ {
		parts = append(parts, message.Outbound{Platform: "p", ChatID: "c", Text: fmt.Sprint("part ", i), Part: i,
			IdempotencyKey: fmt.Sprint("send-k1-", i)})
	}
	id, recs, dup, err := s.AddSend(bg, "k1", "sk", "p", "c", parts)
	if err != nil || dup || len(recs) != 3 {
		t.Fatalf("add send: %d %+v %v %v", id, recs, dup, err)
	}
	id2, recs2, dup, err := s.AddSend(bg, "k1", "sk", "p", "c", parts)
	if err != nil || !dup || id2 != id || len(recs2) != 0 {
		t.Fatalf("repeated send: %d %+v %v %v, want id %d dup", id2, recs2, dup, err, id)
	}
	ob := must(s.PendingOutbox(bg))(t)
	if len(ob) != 3 {
		t.Fatalf("outbox = %+v", ob)
	}
	for i := range ob {
		if ob[i].ID != recs[i].ID || ob[i].SessionKey != "sk" || ob[i].Msg.Text != parts[i].Text {
			t.Fatalf("outbox[%d] = %+v, AddSend returned %+v", i, ob[i], recs[i])
		}
	}
	// A part whose idempotency key is taken fails the send as a whole.
	if _, _, _, err := s.AddSend(bg, "k2", "sk", "p", "c", parts[:1]); err == nil {
		t.Fatal("send with a taken idempotency key stored")
	}
	for _, r := range recs {
		noErr(t, s.Delivered(bg, r.ID, 1, "m"))
	}
	must(s.Prune(bg, time.Now().Add(time.Hour)))(t)
	if n, err := s.PruneSends(bg, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune sends = %d %v, want 1", n, err)
	}
	if _, _, dup, err := s.AddSend(bg, "k1", "sk", "p", "c", parts); err != nil || dup {
		t.Fatalf("send after prune: dup=%v err=%v", dup, err)
	}
}

// The minute budget: the third message of a minute is over, stored
// refused without its text, and only the first over it notifies; the next
// minute starts again. Counts survive a reopen.
func testBudgetWindows(t *testing.T, open Opener) {
	clock := NewClock(time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC))
	s := open(t, clock.Now)
	b := store.Budget{PerMinute: 2, PerDay: 3}
	addB := func(ev string) (*store.OverBudget, int64) {
		t.Helper()
		id, dup, over, err := s.AddInboundBudget(bg, "k", msg(ev, "c", "text "+ev), b)
		if err != nil || dup {
			t.Fatalf("AddInboundBudget(%s): %v dup=%v", ev, err, dup)
		}
		return over, id
	}
	for i := 1; i <= 2; i++ {
		if over, _ := addB(fmt.Sprint(i)); over != nil {
			t.Fatalf("message %d over: %+v", i, over)
		}
	}
	over, id := addB("3")
	if over == nil || over.Period != "minute" || !over.Notify || !over.Until.Equal(time.Date(2026, 3, 4, 10, 21, 0, 0, time.UTC)) {
		t.Fatalf("third message of the minute: %+v", over)
	}
	if pending := must(s.IsPending(bg, id))(t); pending {
		t.Fatal("a message over budget is pending")
	}
	for _, p := range must(s.Pending(bg))(t) {
		if p.ID == id {
			t.Fatal("a message over budget is listed pending")
		}
	}
	if over, _ := addB("4"); over == nil || over.Notify {
		t.Fatalf("fourth message: %+v, want over without a second notice", over)
	}
	if _, dup, over, err := s.AddInboundBudget(bg, "k", msg("1", "c", "again"), b); err != nil || !dup || over != nil {
		t.Fatalf("redelivered message: dup=%v over=%v err=%v", dup, over, err)
	}
	s.Close()
	clock.Set(clock.Now().Add(time.Minute))
	s = open(t, clock.Now)
	if over, _ := addB("5"); over != nil {
		t.Fatalf("next minute: %+v", over)
	}
	// The day's third message was the fifth: the sixth is over the day.
	if over, _ := addB("6"); over == nil || over.Period != "day" || !over.Until.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("over the day: %+v", over)
	}
	clock.Set(clock.Now().Add(24 * time.Hour))
	if err := s.PruneBudgets(bg); err != nil {
		t.Fatal(err)
	}
	if over, _ := addB("7"); over != nil {
		t.Fatalf("next day: %+v", over)
	}
}

func testMediaFetch(t *testing.T, open Opener) {
	s := open(t, nil)
	in := msg("e1", "c", "look")
	in.Attachments = []message.Attachment{{Kind: message.MediaImage, Ref: "file-1", Name: "a.png", MIME: "image/png", Size: 10}}
	id, _, err := s.AddInbound(bg, "k", in, store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	noErr(t, s.RecordMediaFetch(bg, id, store.MediaFetch{Index: 0, SHA256: "aa", Size: 10, MIME: "image/png", At: time.Now()}))
	s.Close()
	s = open(t, nil)
	pend := must(s.Pending(bg))(t)
	if len(pend) != 1 {
		t.Fatalf("pending %v", pend)
	}
	if a := pend[0].Msg.Attachments; len(a) != 1 || a[0].Ref != "file-1" || a[0].Name != "a.png" {
		t.Fatalf("attachments not in the stored message: %+v", a)
	}
	f, err := s.MediaFetches(bg, id)
	if err != nil || f[0].SHA256 != "aa" || f[0].Size != 10 || f[0].MIME != "image/png" {
		t.Fatalf("fetches after reopen %+v %v", f, err)
	}
	if ref, err := s.ReferencedMedia(bg); err != nil || !ref["aa"] {
		t.Fatalf("referenced %v %v", ref, err)
	}
	// A failure is recorded in place of the first outcome.
	noErr(t, s.RecordMediaFetch(bg, id, store.MediaFetch{Index: 0, Error: "too large", At: time.Now()}))
	if f := must(s.MediaFetches(bg, id))(t); f[0].Error != "too large" || f[0].SHA256 != "" {
		t.Fatalf("replaced %+v", f)
	}
	noErr(t, s.RecordMediaFetch(bg, id, store.MediaFetch{Index: 0, SHA256: "aa", At: time.Now()}))
	// An undelivered reply's file is referenced too.
	r := in.ReplyTo()
	r.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, 0)
	r.Media = &message.OutboundMedia{Kind: message.MediaFile, Source: "https://x/y", Name: "y.pdf", SHA256: "bb", Size: 3}
	recs, err := s.Finish(bg, id, store.Done, "k", 0, []message.Outbound{r}, nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("finish %v %v", recs, err)
	}
	if ref := must(s.ReferencedMedia(bg))(t); !ref["aa"] || !ref["bb"] {
		t.Fatalf("referenced with a pending reply %v", ref)
	}
	noErr(t, s.Delivered(bg, recs[0].ID, 1, "m1"))
	must(s.Prune(bg, time.Now().Add(time.Hour)))(t)
	if f := must(s.MediaFetches(bg, id))(t); len(f) != 0 {
		t.Fatalf("fetch records outlived their message: %+v", f)
	}
	if ref := must(s.ReferencedMedia(bg))(t); len(ref) != 0 {
		t.Fatalf("referenced after prune %v", ref)
	}
}

func testRunLink(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "e1")
	if _, _, ok, err := s.Run(bg, id); ok || err != nil {
		t.Fatalf("run before SetRun: %v %v", ok, err)
	}
	noErr(t, s.SetRun(bg, id, "run_1", []byte(`{"input":"hi"}`)))
	noErr(t, s.SetRun(bg, id, "run_2", []byte(`{"input":"hi"}`)))
	s.Close()
	s = open(t, nil)
	runID, body, ok, err := s.Run(bg, id)
	if !ok || err != nil || runID != "run_2" || string(body) != `{"input":"hi"}` {
		t.Fatalf("run %q %s %v %v", runID, body, ok, err)
	}
	if _, err := s.Finish(bg, id, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Pruning the message removes its run.
	must(s.Prune(bg, time.Now().Add(time.Hour)))(t)
	if _, _, ok, err := s.Run(bg, id); ok || err != nil {
		t.Fatalf("run after prune: %v %v", ok, err)
	}
}

func testPendingApproval(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "e1")
	if _, ok, err := s.Approval(bg, "k"); ok || err != nil {
		t.Fatalf("approval before any: %v %v", ok, err)
	}
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at, err := s.SetApproval(bg, store.PendingApproval{InboundID: id, SessionKey: "k", RunID: "run_1", RequestID: "r1", AskedAt: first})
	if err != nil || !at.Equal(first) {
		t.Fatalf("asked at %v %v", at, err)
	}
	// Recorded again after a restart: the original time stays.
	if at, err = s.SetApproval(bg, store.PendingApproval{InboundID: id, SessionKey: "k", RunID: "run_1", RequestID: "r1", AskedAt: time.Now()}); err != nil || !at.Equal(first) {
		t.Fatalf("asked again at %v %v, want %v", at, err, first)
	}
	a, ok, err := s.Approval(bg, "k")
	if !ok || err != nil || a.RunID != "run_1" || a.RequestID != "r1" || a.InboundID != id || !a.AskedAt.Equal(first) {
		t.Fatalf("approval %+v %v %v", a, ok, err)
	}
	noErr(t, s.DeleteApproval(bg, id, "other"))
	if _, ok, _ := s.Approval(bg, "k"); !ok {
		t.Fatal("another request's deletion removed it")
	}
	// The turn's end removes it.
	if _, err := s.Finish(bg, id, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Approval(bg, "k"); ok || err != nil {
		t.Fatalf("approval after the turn ended: %v %v", ok, err)
	}
	// DeleteApproval with the request, and with any request.
	id2 := add(t, s, "e2")
	must(s.SetApproval(bg, store.PendingApproval{InboundID: id2, SessionKey: "k", RunID: "run_2", RequestID: "r2", AskedAt: time.Now()}))(t)
	noErr(t, s.DeleteApproval(bg, id2, "r2"))
	if _, ok, _ := s.Approval(bg, "k"); ok {
		t.Fatal("approval after its deletion")
	}
	must(s.SetApproval(bg, store.PendingApproval{InboundID: id2, SessionKey: "k", RunID: "run_2", RequestID: "r3", AskedAt: time.Now()}))(t)
	noErr(t, s.DeleteApproval(bg, id2, ""))
	if _, ok, _ := s.Approval(bg, "k"); ok {
		t.Fatal("approval after deleting any request")
	}
}

// SetRerun records the attempt durably and forgets the interrupted run
// with it; pruning the message removes the attempt.
func testRerunAttempt(t *testing.T, open Opener) {
	s := open(t, nil)
	id := add(t, s, "e1")
	if n, err := s.Rerun(bg, id); n != 0 || err != nil {
		t.Fatalf("attempt before SetRerun: %d %v", n, err)
	}
	noErr(t, s.SetRun(bg, id, "run_1", []byte(`{}`)))
	noErr(t, s.SetRerun(bg, id, 1))
	s.Close()
	s = open(t, nil)
	if n, err := s.Rerun(bg, id); n != 1 || err != nil {
		t.Fatalf("attempt after restart: %d %v", n, err)
	}
	if _, _, ok, err := s.Run(bg, id); ok || err != nil {
		t.Fatalf("interrupted run still recorded: %v %v", ok, err)
	}
	if _, err := s.Finish(bg, id, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	must(s.Prune(bg, time.Now().Add(time.Hour)))(t)
	if n, err := s.Rerun(bg, id); n != 0 || err != nil {
		t.Fatalf("attempt after prune: %d %v", n, err)
	}
}

func testPairing(t *testing.T, open Opener) {
	clock := NewClock(time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC))
	s := open(t, clock.Now)
	codes := []string{"AAAA", "AAAA", "BBBB", "CCCC", "DDDD"}
	newCode := func() string { c := codes[0]; codes = codes[1:]; return c }
	req := func(user string) store.PairingRequest {
		return store.PairingRequest{Platform: "telegram", UserID: user, UserName: "n" + user, ChatID: "c" + user}
	}
	c1, created, err := s.RequestPairing(bg, req("1"), time.Hour, 2, newCode)
	if err != nil || !created || c1 != "AAAA" {
		t.Fatalf("first request: %q %v %v", c1, created, err)
	}
	if c, created, err := s.RequestPairing(bg, req("1"), time.Hour, 2, newCode); err != nil || created || c != c1 {
		t.Fatalf("same user again: %q %v %v", c, created, err)
	}
	// The code generator repeats AAAA: the store takes the next free one.
	c2, created, err := s.RequestPairing(bg, req("2"), time.Hour, 2, newCode)
	if err != nil || !created || c2 != "BBBB" {
		t.Fatalf("second user: %q %v %v", c2, created, err)
	}
	if _, _, err := s.RequestPairing(bg, req("3"), time.Hour, 2, newCode); !errors.Is(err, store.ErrPairingFull) {
		t.Fatalf("third user over the limit: %v", err)
	}
	reqs, users := must2(t, s)
	if len(reqs) != 2 || len(users) != 0 || reqs[0].UserName != "n1" || reqs[0].ChatID != "c1" {
		t.Fatalf("pairings = %+v %+v", reqs, users)
	}
	r, err := s.ApprovePairing(bg, "telegram", c1)
	if err != nil || r.UserID != "1" || r.ChatID != "c1" || r.UserName != "n1" {
		t.Fatalf("approve: %+v %v", r, err)
	}
	if _, err := s.ApprovePairing(bg, "telegram", c1); !errors.Is(err, store.ErrNoPairingCode) {
		t.Fatalf("approve twice: %v", err)
	}
	if _, err := s.ApprovePairing(bg, "slack", c2); !errors.Is(err, store.ErrNoPairingCode) {
		t.Fatalf("approve on another platform: %v", err)
	}
	s.Close()
	s = open(t, clock.Now)
	reqs, users = must2(t, s)
	if len(reqs) != 1 || reqs[0].UserID != "2" || len(users) != 1 || users[0].UserID != "1" || users[0].Platform != "telegram" {
		t.Fatalf("pairings after approval and reopen = %+v %+v", reqs, users)
	}
	// Expired requests are not listed, cannot be approved and free their
	// slot.
	clock.Set(clock.Now().Add(2 * time.Hour))
	if _, err := s.ApprovePairing(bg, "telegram", c2); !errors.Is(err, store.ErrNoPairingCode) {
		t.Fatalf("approve an expired code: %v", err)
	}
	if reqs, _ := must2(t, s); len(reqs) != 0 {
		t.Fatalf("expired requests listed: %+v", reqs)
	}
	if c, created, err := s.RequestPairing(bg, req("3"), time.Hour, 1, newCode); err != nil || !created || c != "CCCC" {
		t.Fatalf("request after expiry: %q %v %v", c, created, err)
	}
	if ok, err := s.RevokePairing(bg, "telegram", "1"); !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	if ok, err := s.RevokePairing(bg, "telegram", "1"); ok || err != nil {
		t.Fatalf("revoke twice: %v %v", ok, err)
	}
	if ok, err := s.RevokePairing(bg, "telegram", "3"); ok || err != nil {
		t.Fatalf("revoke a pending user: %v %v", ok, err)
	}
	if reqs, users := must2(t, s); len(reqs) != 0 || len(users) != 0 {
		t.Fatalf("after revokes: %+v %+v", reqs, users)
	}
}

func must2(t *testing.T, s Backend) ([]store.PairingRequest, []store.PairedUser) {
	t.Helper()
	reqs, users, err := s.Pairings(bg)
	if err != nil {
		t.Fatal(err)
	}
	return reqs, users
}

func testPruneHistoryKeepsNewest(t *testing.T, open Opener) {
	clock := NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, clock.Now)
	turn := func(event, session, text string) {
		t.Helper()
		m := msg(event, session, text)
		m.ReceivedAt = clock.Now()
		id, _, err := s.AddInbound(bg, session, m, store.Pending)
		if err != nil {
			t.Fatal(err)
		}
		reply := m.ReplyTo()
		reply.Text = "re: " + text
		reply.IdempotencyKey = message.IdempotencyKey("p", event, 1)
		recs, err := s.Finish(bg, id, store.Done, session, 0, []message.Outbound{reply},
			[]store.HistoryEntry{{Role: "user", Content: text}, {Role: "assistant", Content: reply.Text}})
		if err != nil {
			t.Fatal(err)
		}
		noErr(t, s.Delivered(bg, recs[0].ID, 1, "pm"))
	}
	for i := 0; i < 10; i++ {
		turn(fmt.Sprint("a", i), "busy", fmt.Sprint("busy ", i))
	}
	turn("old", "idle", "long ago")
	clock.Set(clock.Now().Add(48 * time.Hour))
	turn("new", "recent", "just now")
	n, err := s.PruneHistory(bg, clock.Now().Add(-24*time.Hour), 4)
	if err != nil {
		t.Fatal(err)
	}
	if n != 22 { // busy's 20 and idle's 2, by age
		t.Errorf("pruned %d entries, want 22", n)
	}
	if h := must(s.History(bg, "busy", 0, 100))(t); len(h) != 0 {
		t.Errorf("busy's history is older than the retention, %d entries left", len(h))
	}
	if h := must(s.History(bg, "recent", 0, 100))(t); len(h) != 2 || h[0].Content != "just now" {
		t.Errorf("recent session's history: %+v", h)
	}
	// The count cap alone.
	for i := 0; i < 10; i++ {
		turn(fmt.Sprint("c", i), "chatty", fmt.Sprint("chatty ", i))
	}
	must(s.PruneHistory(bg, clock.Now().Add(-24*time.Hour), 4))(t)
	h := must(s.History(bg, "chatty", 0, 100))(t)
	var got []string
	for _, e := range h {
		got = append(got, e.Content)
	}
	if strings.Join(got, "|") != "chatty 8|re: chatty 8|chatty 9|re: chatty 9" {
		t.Errorf("chatty's history after the cap of 4: %v", got)
	}
}
