// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/dispatch/storetest"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/store/jsstore"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

var _ dispatch.Store = (*jsstore.Store)(nil)

var prefixes atomic.Int64

// connect opens a client connection to url, closed when the test ends.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// opener gives each test a new prefix (its own bucket) on the servers;
// every open connects anew, as a restarted herald would.
func opener(urls []string, replicas int) func(t *testing.T) storetest.Opener {
	return func(t *testing.T) storetest.Opener {
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		n := 0
		return func(t *testing.T, now func() time.Time) storetest.Backend {
			t.Helper()
			n++
			nc := connect(t, urls[n%len(urls)])
			s, err := jsstore.Open(context.Background(), nc, jsstore.Options{Prefix: prefix, Replicas: replicas, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
}

func urls(servers ...*server.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.ClientURL())
	}
	return out
}

// TestR1 runs the store contract against one JetStream server.
func TestR1(t *testing.T) {
	srv := natstest.StartServer(t)
	storetest.Run(t, opener(urls(srv), 1))
	storetest.RunStatus(t, opener(urls(srv), 1))
}

// TestR3 runs the store contract against a 3-node JetStream cluster with
// three replicas; each reopen connects to another node.
func TestR3(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster")
	}
	servers := natstest.StartCluster(t, 3)
	storetest.Run(t, opener(urls(servers...), 3))
	storetest.RunStatus(t, opener(urls(servers...), 3))
}

// open opens a store with a new prefix on url.
func open(t *testing.T, url, prefix string, replicas int) *jsstore.Store {
	t.Helper()
	s, err := jsstore.Open(context.Background(), connect(t, url), jsstore.Options{Prefix: prefix, Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func inbound(event string) *message.Inbound {
	return &message.Inbound{Platform: "p", EventID: event, ChatID: "c", SenderID: "u", Text: "hi " + event, ReceivedAt: time.Now()}
}

// The event id stays deduplicated after JetStream's duplicate window for
// Nats-Msg-Id has passed: the key itself, created only if absent, is the
// deduplication. The window is shortened here to show it.
func TestDedupBeyondDuplicateWindow(t *testing.T) {
	srv := natstest.StartServer(t)
	s := open(t, srv.ClientURL(), "win", 1)
	ctx := context.Background()
	js, err := jetstream.New(connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_"+s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	id, dup, err := s.AddInbound(ctx, "k", inbound("e1"), store.Pending)
	if err != nil || dup {
		t.Fatalf("add: %v %v", dup, err)
	}
	time.Sleep(500 * time.Millisecond) // let the window pass
	id2, dup, err := s.AddInbound(ctx, "k", inbound("e1"), store.Pending)
	if err != nil || !dup || id2 != id {
		t.Fatalf("redelivery after the window: id %d dup %v err %v, want %d dup", id2, dup, err, id)
	}
	if p, _ := s.Pending(ctx); len(p) != 1 {
		t.Fatalf("pending = %+v", p)
	}
}

// A Finish that dies while publishing its batch (the commit message never
// sent) leaves nothing of the turn's outcome: the message stays pending,
// no part is queued, no history written; the next Finish stores all of it.
func TestCrashMidFinish(t *testing.T) {
	srv := natstest.StartServer(t)
	s := open(t, srv.ClientURL(), "crash", 1)
	ctx := context.Background()
	in := inbound("e1")
	id, _, err := s.AddInbound(ctx, "k", in, store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	// What the dead Finish had sent: the first messages of its batch.
	nc := connect(t, srv.ClientURL())
	for i, key := range []string{fmt.Sprintf("ist.%d", id), "h.xaw.0.00000000000000000001.0000"} {
		m := nats.NewMsg("$KV." + s.Bucket() + "." + key)
		m.Data = []byte(`{"s":1}`)
		m.Header.Set("Nats-Batch-Id", "deadbatch")
		m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i+1))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsPending(ctx, id); !ok || err != nil {
		t.Fatalf("pending after a dead batch: %v %v", ok, err)
	}
	if h, err := s.History(ctx, "k", 0, 10); len(h) != 0 || err != nil {
		t.Fatalf("history after a dead batch: %+v %v", h, err)
	}
	r := in.ReplyTo()
	r.Text, r.IdempotencyKey = "hello", "p:e1:0"
	recs, err := s.Finish(ctx, id, store.Done, "k", 0, []message.Outbound{r}, []store.HistoryEntry{{Role: "user", Content: "hi"}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("finish after a dead batch: %+v %v", recs, err)
	}
	if ok, _ := s.IsPending(ctx, id); ok {
		t.Fatal("still pending")
	}
	if h, _ := s.History(ctx, "k", 0, 10); len(h) != 1 {
		t.Fatalf("history = %+v", h)
	}
}

// Two nodes finish the same turn at once (a turn that ran twice): one
// write wins, the other finds the message finished: one history, one
// reply part. Two nodes recording different outcomes of one part: the
// first stands.
func TestTwoNodes(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	a := open(t, servers[0].ClientURL(), "two", 3)
	b := open(t, servers[1].ClientURL(), "two", 3)
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		in := inbound(fmt.Sprint("e", round))
		id, _, err := a.AddInbound(ctx, "k", in, store.Pending)
		if err != nil {
			t.Fatal(err)
		}
		r := in.ReplyTo()
		r.Text, r.IdempotencyKey = "hello", fmt.Sprint("p:e", round, ":0")
		var wg sync.WaitGroup
		recs := make([][]store.OutboxRecord, 2)
		errs := make([]error, 2)
		for i, s := range []*jsstore.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs[i], errs[i] = s.Finish(ctx, id, store.Done, "k", 0, []message.Outbound{r}, []store.HistoryEntry{{Role: "user", Content: in.Text}})
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || len(recs[0])+len(recs[1]) != 1 {
			t.Fatalf("round %d: %+v %v", round, recs, errs)
		}
		part := append(recs[0], recs[1]...)[0]
		errs[0], errs[1] = nil, nil
		wg.Add(2)
		go func() { defer wg.Done(); errs[0] = a.Delivered(ctx, part.ID, 1, "m") }()
		go func() { defer wg.Done(); errs[1] = b.GiveUp(ctx, part.ID, 1, "x") }()
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		st, err := b.Stats(ctx)
		if err != nil || st.PendingOutbox != 0 {
			t.Fatalf("round %d: stats %+v %v", round, st, err)
		}
		// Once given up, a late delivery does not change it, and the
		// other way round.
		if err := a.Delivered(ctx, part.ID, 2, "late"); err != nil {
			t.Fatal(err)
		}
		if st2, _ := a.Stats(ctx); st2.FailedOutbox != st.FailedOutbox {
			t.Fatalf("round %d: a late outcome changed the first: %+v then %+v", round, st, st2)
		}
	}
	h, err := b.History(ctx, "k", 0, 100)
	if err != nil || len(h) != 10 {
		t.Fatalf("history has %d entries, want 10 (one per turn): %v", len(h), err)
	}
	// The bucket is replicated three times.
	js, err := jetstream.New(connect(t, servers[2].ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_"+a.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream replicas: %+v", info.Cluster)
	}
}

// Compact purges the delete markers that prunes and state changes leave,
// and only those: live keys stay, and a pruned event can be stored again.
func TestCompactPurgesMarkers(t *testing.T) {
	srv := natstest.StartServer(t)
	ctx := context.Background()
	s, err := jsstore.Open(ctx, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "compact", Replicas: 1, MarkerAge: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done, _, err := s.AddInbound(ctx, "k", inbound("done"), store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, done, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	pending, _, err := s.AddInbound(ctx, "k", inbound("pending"), store.Pending)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	js, err := jetstream.New(connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	markers := func() int {
		t.Helper()
		w, err := kv.WatchAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		n := 0
		for e := range w.Updates() {
			if e == nil {
				return n
			}
			if e.Operation() != jetstream.KeyValuePut {
				n++
			}
		}
		return n
	}
	if markers() == 0 {
		t.Fatal("no delete markers after a finish and a prune")
	}
	if _, err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := markers(); n != 0 {
		t.Fatalf("%d delete markers after Compact", n)
	}
	if p, err := s.Pending(ctx); err != nil || len(p) != 1 || p[0].ID != pending {
		t.Fatalf("pending after Compact: %+v %v", p, err)
	}
	if _, dup, err := s.AddInbound(ctx, "k", inbound("done"), store.Pending); err != nil || dup {
		t.Fatalf("pruned event after Compact: dup %v err %v", dup, err)
	}
}
