// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

const testPartitions = 8

// node is one dispatcher of a two-node cluster sharing one store, with
// its own agent and the platform adapter both share (as two herald nodes
// send to the same platform).
type node struct {
	d     *Dispatcher
	agent *fakeAgent
}

// twoNodes starts two clustered dispatchers on one SQLite store whose
// announcements wake each other. Neither owns a partition yet.
func twoNodes(t *testing.T, announce bool) (a, b *node, st *store.Store, ad *fakeAdapter) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ad = newFakeAdapter("p")
	a, b = &node{agent: newFakeAgent()}, &node{agent: newFakeAgent()}
	for _, n := range []*node{a, b} {
		other := b
		if n == b {
			other = a
		}
		opts := Options{Partitions: testPartitions, InitialBackoff: 10 * time.Millisecond, TurnRetryBackoff: 10 * time.Millisecond}
		if announce {
			opts.Announce = func(p int) { other.d.Wake(p) }
		}
		n.d = New(st, n.agent, map[string]Platform{"p": {Adapter: ad, Policy: allowAll, Idempotent: true}}, opts, quietLog(), metrics.Nop())
	}
	for _, n := range []*node{a, b} {
		if _, _, err := n.d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		a.d.Close()
		b.d.Close()
		st.Close()
	})
	return a, b, st, ad
}

// sessionIn returns a chat whose direct session falls in partition p.
func sessionIn(t *testing.T, p int) string {
	t.Helper()
	return chatIn(t, p, func(chat string) string { return in("x", chat, "u", "x").SessionKey(allowAll.GroupSessionsPerUser) })
}

// sendChatIn returns a chat whose sent messages' session falls in
// partition p.
func sendChatIn(t *testing.T, p int) string {
	t.Helper()
	return chatIn(t, p, func(chat string) string { return sendSessionPrefix + "p\x00" + chat + "\x00" })
}

func chatIn(t *testing.T, p int, key func(chat string) string) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		chat := fmt.Sprint("c", i)
		if cluster.PartitionOf(key(chat), testPartitions) == p {
			return chat
		}
	}
	t.Fatalf("no chat for partition %d", p)
	return ""
}

// Every message is answered once, by the owner of its partition, whichever
// node received it.
func TestPartitionsShareWork(t *testing.T) {
	a, b, _, ad := twoNodes(t, true)
	for p := 0; p < testPartitions; p++ {
		if p%2 == 0 {
			a.d.StartPartition(p)
		} else {
			b.d.StartPartition(p)
		}
	}
	const msgs = 48
	for i := 0; i < msgs; i++ {
		m := in(fmt.Sprint("e", i), fmt.Sprint("chat", i%12), "u", fmt.Sprint("hi ", i))
		n := a
		if i%3 == 0 {
			n = b
		}
		if err := n.d.Deliver(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	ad.waitSent(t, msgs)
	for name, n := range map[string]*node{"a": a, "b": b} {
		for _, c := range n.agent.Calls() {
			p := cluster.PartitionOf(c.SessionID, testPartitions)
			if (p%2 == 0) != (name == "a") {
				t.Errorf("node %s ran a turn of partition %d", name, p)
			}
		}
	}
	if got := len(a.agent.Calls()) + len(b.agent.Calls()); got != msgs {
		t.Fatalf("%d turns for %d messages", got, msgs)
	}
	if a.agent.overlaps+b.agent.overlaps != 0 {
		t.Fatal("two turns of one session at once")
	}
	if got := len(a.d.Owned()) + len(b.d.Owned()); got != testPartitions {
		t.Fatalf("owned %v and %v", a.d.Owned(), b.d.Owned())
	}
}

// StopPartition ends the partition's turn at once without recording it;
// the next owner runs it and answers once, and the first node's turn,
// ending later, records nothing.
func TestStopPartitionFences(t *testing.T) {
	a, b, st, ad := twoNodes(t, true)
	const p = 3
	a.d.StartPartition(p)
	a.agent.gate = make(chan struct{}) // never opened: only a cancel ends the turn
	if err := a.d.Deliver(context.Background(), in("e1", sessionIn(t, p), "u", "hello")); err != nil {
		t.Fatal(err)
	}
	<-a.agent.started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.d.StopPartition(ctx, p)
	if ctx.Err() != nil {
		t.Fatal("StopPartition waited for its bound: the turn was not cancelled")
	}
	if len(a.d.Owned()) != 0 {
		t.Fatalf("a still owns %v", a.d.Owned())
	}
	waitPending(t, st, 1)
	b.d.StartPartition(p)
	sent := ad.waitSent(t, 1)
	if sent[0].Text != "re: hello" {
		t.Fatalf("sent %+v", sent)
	}
	waitPending(t, st, 0)
	if got := len(b.agent.Calls()); got != 1 {
		t.Fatalf("b ran %d turns", got)
	}
	testwait.For(t, "a's turns ended", func() bool { return a.d.Stats().TurnsInFlight == 0 })
	if got := len(ad.Sent()); got != 1 {
		t.Fatalf("%d replies", got)
	}
}

// A turn whose agent answers after its partition was stopped (past the
// stop bound) records nothing: the message is the new owner's.
func TestLateTurnRecordsNothing(t *testing.T) {
	a, _, st, ad := twoNodes(t, true)
	const p = 5
	a.d.StartPartition(p)
	release := make(chan struct{})
	blocking := &blockingAgent{release: release, started: make(chan struct{})}
	a.d.SetAgent(blocking)
	if err := a.d.Deliver(context.Background(), in("e1", sessionIn(t, p), "u", "hello")); err != nil {
		t.Fatal(err)
	}
	<-blocking.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	a.d.StopPartition(ctx, p)
	cancel()
	close(release)
	testwait.For(t, "a's turn ended", func() bool { return a.d.Stats().TurnsInFlight == 0 })
	waitPending(t, st, 1)
	if got := len(ad.Sent()); got != 0 {
		t.Fatalf("%d replies from a fenced turn", got)
	}
}

// blockingAgent answers only when released, ignoring its context, like a
// backend whose answer is already on its way.
type blockingAgent struct {
	release chan struct{}
	started chan struct{}
	once    sync.Once
}

func (a *blockingAgent) KeepsHistory() bool { return false }

func (a *blockingAgent) Complete(ctx context.Context, req agent.Request, ev agent.Events) (string, error) {
	a.once.Do(func() { close(a.started) })
	<-a.release
	return "late", nil
}

// Work stored while no node owned its partition (no wake reached anyone)
// is recovered by the next StartPartition; a message sent through the
// send API of a node that does not own its chat's partition is delivered
// by the owner.
func TestStartPartitionRecovers(t *testing.T) {
	a, b, st, ad := twoNodes(t, false)
	const p = 6
	if err := a.d.Deliver(context.Background(), in("e1", sessionIn(t, p), "u", "left")); err != nil {
		t.Fatal(err)
	}
	waitPending(t, st, 1)
	if _, _, err := a.d.Send(context.Background(), SendRequest{Platform: "p", ChatID: sendChatIn(t, p), Text: "pushed", IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if got := a.d.Stats().RepliesPending; got != 0 {
		t.Fatalf("a queued %d replies of a partition it does not own", got)
	}
	b.d.StartPartition(p)
	sent := ad.waitSent(t, 2)
	texts := map[string]bool{}
	for _, m := range sent {
		texts[m.Text] = true
	}
	if !texts["re: left"] || !texts["pushed"] {
		t.Fatalf("sent %+v", sent)
	}
	waitPending(t, st, 0)
	waitOutbox(t, st, 0, 0)
}

// gatedStore holds Finish (and, with stats set, Stats) until its gate
// opens, as a store that stalls (NATS cut off) and answers later.
type gatedStore struct {
	Store
	gate     chan struct{}
	finish   bool          // Finish waits at the gate
	stats    bool          // Stats waits at the gate
	attempts bool          // AttemptStarted waits at the gate
	held     chan struct{} // receives when a call waits at the gate
}

func (g *gatedStore) AttemptStarted(ctx context.Context, id int64, at time.Time) error {
	if g.attempts {
		g.wait()
	}
	return g.Store.AttemptStarted(ctx, id, at)
}

// waitHeld waits until a call waits at the gate, bounded.
func (g *gatedStore) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(testwait.Timeout):
		t.Fatal("no store call reached the gate")
	}
}

func (g *gatedStore) wait() {
	select {
	case g.held <- struct{}{}:
	default:
	}
	<-g.gate
}

func (g *gatedStore) Finish(ctx context.Context, inboundID int64, st store.State, sessionKey string, gen int64, replies []message.Outbound, history []store.HistoryEntry) ([]store.OutboxRecord, error) {
	if g.finish {
		g.wait()
	}
	return g.Store.Finish(ctx, inboundID, st, sessionKey, gen, replies, history)
}

func (g *gatedStore) Stats(ctx context.Context) (store.Stats, error) {
	if g.stats {
		g.wait()
	}
	return g.Store.Stats(ctx)
}

// A turn whose Finish stalled past its partition's stop bound, and that is
// recorded once this node owns the partition again, delivers nothing: the
// node that took the partition in between ran it and delivered its reply.
func TestFinishAfterOwnershipEndedDeliversNothing(t *testing.T) {
	ownershipReturns(t, &gatedStore{finish: true}, true)
}

// wakingStore wakes its dispatcher's refresh right after a Finish has
// committed, and returns only once the refresh queued the new parts: the
// race of another node's wake with a turn's own delivery.
type wakingStore struct {
	Store
	d *Dispatcher
	p int
}

func (w *wakingStore) Finish(ctx context.Context, inboundID int64, st store.State, sessionKey string, gen int64, replies []message.Outbound, history []store.HistoryEntry) ([]store.OutboxRecord, error) {
	recs, err := w.Store.Finish(ctx, inboundID, st, sessionKey, gen, replies, history)
	if err == nil && len(recs) > 0 {
		w.d.Wake(w.p)
		testwait.Until(testwait.Timeout, func() bool { return w.d.Stats().RepliesPending > 0 })
	}
	return recs, err
}

// A reply part that a refresh queued between the store's commit and the
// turn's own delivery is sent once, on a platform that cannot deduplicate.
func TestFinishRacesRefresh(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const p = 3
	ad := newFakeAdapter("p")
	waking := &wakingStore{Store: st, p: p}
	d := New(waking, newFakeAgent(), map[string]Platform{"p": {Adapter: ad, Policy: allowAll}},
		Options{Partitions: testPartitions, InitialBackoff: 10 * time.Millisecond}, quietLog(), metrics.Nop())
	waking.d = d
	defer d.Close()
	if _, _, err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.StartPartition(p)
	if err := d.Deliver(context.Background(), in("e1", sessionIn(t, p), "u", "hello")); err != nil {
		t.Fatal(err)
	}
	ad.waitSent(t, 1)
	waitOutbox(t, st, 0, 0)
	sentOnceWhenIdle(t, d, ad)
}

// sentOnceWhenIdle waits until d runs and sends nothing, and wants the
// platform to have seen one send.
func sentOnceWhenIdle(t *testing.T, d *Dispatcher, ad *fakeAdapter) {
	t.Helper()
	testwait.For(t, "the dispatcher idle", func() bool {
		s := d.Stats()
		return s.TurnsInFlight == 0 && s.RepliesPending == 0 && s.Sending == 0
	})
	ad.mu.Lock()
	calls := ad.calls
	ad.mu.Unlock()
	if calls != 1 {
		t.Fatalf("%d sends of one reply", calls)
	}
}

// The watchdog's probe is answered while the store stalls: a slow store is
// not a hung dispatcher.
func TestCheckWhileStoreStalls(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gated := &gatedStore{Store: st, gate: make(chan struct{}), stats: true, held: make(chan struct{}, 1)}
	d := New(gated, newFakeAgent(), map[string]Platform{"p": {Adapter: newFakeAdapter("p"), Policy: allowAll}}, Options{}, quietLog(), metrics.Nop())
	if _, _, err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	gated.waitHeld(t) // the gauges' Stats waits
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = d.Check(ctx)
	close(gated.gate)
	d.Close()
	if err != nil {
		t.Fatalf("Check while the store stalls: %v", err)
	}
}

// A reply part whose send was held (a store call stalled) past its
// partition's stop bound is not sent by this node when it owns the
// partition again: the node that owned it in between delivered it. The
// platform here cannot deduplicate, so a second send would show twice.
func TestStaleDeliveryAfterOwnershipReturns(t *testing.T) {
	ownershipReturns(t, &gatedStore{attempts: true}, false)
}

// ownershipReturns runs a message of one partition on node a, whose store
// (gated) stalls at the gate; a's ownership of the partition ends past its
// stop bound, node b takes the partition and answers, b lets it go and a
// owns it again; then the stalled call returns. The platform shows every
// send (calls counts them): one reply must have been sent, once.
func ownershipReturns(t *testing.T, gated *gatedStore, idempotent bool) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ad := newFakeAdapter("p")
	gated.Store, gated.gate, gated.held = st, make(chan struct{}), make(chan struct{}, 1)
	opts := Options{Partitions: testPartitions, InitialBackoff: 10 * time.Millisecond}
	platforms := map[string]Platform{"p": {Adapter: ad, Policy: allowAll, Idempotent: idempotent}}
	a := New(gated, newFakeAgent(), platforms, opts, quietLog(), metrics.Nop())
	b := New(st, newFakeAgent(), platforms, opts, quietLog(), metrics.Nop())
	defer a.Close()
	defer b.Close()
	for _, d := range []*Dispatcher{a, b} {
		if _, _, err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	const p = 4
	a.StartPartition(p)
	if err := a.Deliver(context.Background(), in("e1", sessionIn(t, p), "u", "hello")); err != nil {
		t.Fatal(err)
	}
	gated.waitHeld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	a.StopPartition(ctx, p)
	cancel()
	b.StartPartition(p)
	ad.waitSent(t, 1)
	waitPending(t, st, 0)
	waitOutbox(t, st, 0, 0)
	b.StopPartition(context.Background(), p)
	a.StartPartition(p)
	close(gated.gate)
	sentOnceWhenIdle(t, a, ad)
}
