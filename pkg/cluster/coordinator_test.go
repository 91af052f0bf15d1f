// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// interval is one stretch during which a node ran a resource, on the
// test's single monotonic clock.
type interval struct {
	node        string
	key         string
	start, stop time.Time // stop is zero while running
}

// tracker is the Worker of every node in a test: it records each node's
// start/stop intervals per resource and counts a start of a resource that
// runs on another node as a violation.
type tracker struct {
	mu         sync.Mutex
	running    map[string]string // key -> node
	intervals  []interval
	open       map[string]int // node|key -> index in intervals
	violations []string
}

func newTracker() *tracker {
	return &tracker{running: map[string]string{}, open: map[string]int{}}
}

type trackedWorker struct {
	tr        *tracker
	node      string
	stopDelay time.Duration // how long the work takes to stop
}

func (w trackedWorker) Start(r Resource) {
	tr, key := w.tr, r.Key()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if cur := tr.running[key]; cur != "" {
		tr.violations = append(tr.violations, fmt.Sprintf("%s started on %s while running on %s", key, w.node, cur))
	}
	tr.running[key] = w.node
	tr.open[w.node+"|"+key] = len(tr.intervals)
	tr.intervals = append(tr.intervals, interval{node: w.node, key: key, start: time.Now()})
}

func (w trackedWorker) Stop(ctx context.Context, r Resource) {
	if w.stopDelay > 0 {
		select {
		case <-time.After(w.stopDelay):
		case <-ctx.Done():
		}
	}
	tr, key := w.tr, r.Key()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if cur := tr.running[key]; cur != w.node {
		tr.violations = append(tr.violations, fmt.Sprintf("%s stopped on %s while running on %q", key, w.node, cur))
	} else {
		delete(tr.running, key)
	}
	i, ok := tr.open[w.node+"|"+key]
	if !ok {
		tr.violations = append(tr.violations, fmt.Sprintf("%s stopped on %s, never started", key, w.node))
		return
	}
	delete(tr.open, w.node+"|"+key)
	tr.intervals[i].stop = time.Now()
}

func (tr *tracker) runningOn(key string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.running[key]
}

func (tr *tracker) snapshot() []interval {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.intervals)
}

// check fails the test on a recorded violation or on two intervals of one
// resource that overlap.
func (tr *tracker) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.violations) > 0 {
		t.Fatalf("violations: %v", tr.violations)
	}
	byKey := map[string][]interval{}
	for _, iv := range tr.intervals {
		byKey[iv.key] = append(byKey[iv.key], iv)
	}
	for key, ivs := range byKey {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].start.Before(ivs[j].start) })
		for i := 1; i < len(ivs); i++ {
			prev := ivs[i-1]
			if prev.stop.IsZero() || ivs[i].start.Before(prev.stop) {
				t.Fatalf("%s: %s ran from %v to %v, %s started at %v", key, prev.node,
					prev.start.Format("15:04:05.000"), prev.stop.Format("15:04:05.000"), ivs[i].node, ivs[i].start.Format("15:04:05.000"))
			}
		}
	}
}

// testLog keeps a node's log and prints it when the test fails.
func testLog(t *testing.T) *logrus.Entry {
	var mu sync.Mutex
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Log(buf.String())
			mu.Unlock()
		}
	})
	return logrus.NewEntry(l)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var testPlatforms = []string{"discord-main", "mattermost-ops", "slack-team", "telegram-main"}

func testConfig(ttl time.Duration) Config {
	lc := LeaseConfig{TTL: ttl, Renew: ttl / 6, StopTimeout: 500 * time.Millisecond, Drift: ttl / 10}
	return Config{Version: "test", Partitions: 16, Platforms: testPlatforms, Lease: lc, Member: lc}
}

type node struct {
	name string
	c    *Coordinator
	kv   jetstream.KeyValue // the leases bucket, through this node's connection
}

func startNode(t *testing.T, url, name string, cfg Config, replicas int, w Worker, m Metrics) *node {
	t.Helper()
	js := connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBuckets(ctx, js, "herald", cfg, replicas)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node = name
	cfg.HTTP = "127.0.0.1:0"
	c, err := NewCoordinator(cfg, js, b, w, m, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return &node{name: name, c: c, kv: b.Leases}
}

func closeNode(t *testing.T, n *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.c.Close(ctx); err != nil {
		t.Fatalf("close %s: %v", n.name, err)
	}
}

func names(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	sort.Strings(out)
	return out
}

// owners is who should hold each lease key among members.
func owners(cfg Config, members []string) map[string]string {
	out := map[string]string{}
	for p := 0; p < cfg.Partitions; p++ {
		out[Resource{Kind: KindPartition, Partition: p}.Key()] = Owner(p, members)
	}
	for _, p := range cfg.Platforms {
		out[Resource{Kind: KindPlatform, Platform: p}.Key()] = OwnerOf(p, members)
	}
	return out
}

// converged reports whether every lease key is held in the bucket and run
// by its rendezvous owner among nodes, each node lists exactly the members
// and its own share, and nothing runs anywhere else.
func converged(cfg Config, tr *tracker, nodes []*node) (bool, string) {
	members := names(nodes)
	want := owners(cfg, members)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for key, owner := range want {
		if got := tr.runningOn(key); got != owner {
			return false, fmt.Sprintf("%s runs on %q, want %s", key, got, owner)
		}
		e, err := nodes[0].kv.Get(ctx, key)
		if err != nil || string(e.Value()) != owner {
			return false, fmt.Sprintf("%s in the bucket: %v %v, want %s", key, e, err, owner)
		}
	}
	for _, n := range nodes {
		st := n.c.Status()
		var got []string
		for _, m := range st.Members {
			got = append(got, m.Node)
		}
		if !st.Member || !slices.Equal(got, members) {
			return false, fmt.Sprintf("%s: member %v, members %v", n.name, st.Member, got)
		}
		var mine []string
		for _, p := range st.Partitions {
			mine = append(mine, Resource{Kind: KindPartition, Partition: p}.Key())
		}
		for _, p := range st.Platforms {
			mine = append(mine, Resource{Kind: KindPlatform, Platform: p}.Key())
		}
		for _, k := range mine {
			if want[k] != n.name {
				return false, fmt.Sprintf("%s holds %s, owner %s", n.name, k, want[k])
			}
		}
	}
	return true, ""
}

func waitConverged(t *testing.T, cfg Config, tr *tracker, nodes []*node) time.Time {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, why := converged(cfg, tr, nodes)
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged on %v: %s", names(nodes), why)
		}
		select {
		case <-nodes[0].c.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startThree starts nodes n1, n2 and n3 on the NATS server at url, their
// work recorded by one tracker and their lease changes by one counters,
// and waits until they have converged.
func startThree(t *testing.T, url string, cfg Config) (*tracker, *counters, []*node) {
	t.Helper()
	tr := newTracker()
	m := &counters{}
	var nodes []*node
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startNode(t, url, name, cfg, 1, trackedWorker{tr: tr, node: name}, m))
	}
	waitConverged(t, cfg, tr, nodes)
	return tr, m, nodes
}

// TestCoordinatorSplitsJoinsAndLeaves: three nodes split the partitions
// and platforms, each held and run once; a fourth takes only its share; a
// node that closes hands its share over at once.
func TestCoordinatorSplitsJoinsAndLeaves(t *testing.T) {
	s := natstest.StartServer(t)
	cfg := testConfig(3 * time.Second)
	tr, m, nodes := startThree(t, s.ClientURL(), cfg)
	tr.check(t)
	for _, n := range nodes {
		st := n.c.Status()
		if len(st.Partitions) == 0 || st.NATS != "CONNECTED" || len(st.Members) != 3 || st.Members[0].Version != "test" {
			t.Fatalf("%s: status %+v", n.name, st)
		}
	}

	// A fourth node joins: only what it wins moves.
	joined := time.Now()
	nodes = append(nodes, startNode(t, s.ClientURL(), "n4", cfg, 1, trackedWorker{tr: tr, node: "n4"}, m))
	waitConverged(t, cfg, tr, nodes)
	tr.check(t)
	four := owners(cfg, names(nodes))
	moved := 0
	for _, iv := range tr.snapshot() {
		if !iv.stop.IsZero() && iv.stop.After(joined) {
			if four[iv.key] != "n4" {
				t.Fatalf("%s stopped on %s when n4 joined, but n4 does not win it", iv.key, iv.node)
			}
			moved++
		}
	}
	st := nodes[3].c.Status()
	var dShare []int
	for p := 0; p < cfg.Partitions; p++ {
		if Owner(p, names(nodes)) == "n4" {
			dShare = append(dShare, p)
		}
	}
	if !slices.Equal(st.Partitions, dShare) {
		t.Fatalf("n4 holds partitions %v, its share is %v", st.Partitions, dShare)
	}
	t.Logf("n4 joined: %d resources moved to it (partitions %v, platforms %v)", moved, st.Partitions, st.Platforms)

	// n2 leaves gracefully: its share moves at once, without waiting for the TTL.
	left := time.Now()
	closeNode(t, nodes[1])
	rest := []*node{nodes[0], nodes[2], nodes[3]}
	done := waitConverged(t, cfg, tr, rest)
	tr.check(t)
	t.Logf("n2 closed: handed over in %v (lease TTL %v)", done.Sub(left).Round(time.Millisecond), cfg.Lease.TTL)
	// The new owners took n2's keys when it deleted them, not when they
	// expired: each started less than one TTL after n2 stopped it.
	stopped := map[string]time.Time{}
	for _, iv := range tr.snapshot() {
		if iv.node == "n2" && !iv.stop.IsZero() && iv.stop.After(left) {
			stopped[iv.key] = iv.stop
		}
	}
	for _, iv := range tr.snapshot() {
		if at, ok := stopped[iv.key]; ok && iv.node != "n2" && iv.start.After(at) && iv.start.Sub(at) >= cfg.Lease.TTL {
			t.Fatalf("%s: %s started %v after n2 stopped it, as if the key had expired", iv.key, iv.node, iv.start.Sub(at))
		}
	}
	if len(stopped) == 0 {
		t.Fatal("n2 stopped nothing when it closed")
	}
	if m.lost.Load() != 0 {
		t.Fatalf("%d leases lost; none should be", m.lost.Load())
	}
}

// TestCoordinatorCutNodeFencedBeforeTakeover: a node cut from NATS stops
// all its partitions and platforms before another node starts them, and
// the others take them over within TTL + 2 s of the cut.
func TestCoordinatorCutNodeFencedBeforeTakeover(t *testing.T) {
	s := natstest.StartServer(t)
	proxy := natstest.StartProxy(t, s.Addr().String())
	cfg := testConfig(3 * time.Second)
	tr := newTracker()
	var m counters
	a := startNode(t, proxy.URL(), "n1", cfg, 1, trackedWorker{tr: tr, node: "n1", stopDelay: 100 * time.Millisecond}, &m)
	b := startNode(t, s.ClientURL(), "n2", cfg, 1, trackedWorker{tr: tr, node: "n2"}, &m)
	c := startNode(t, s.ClientURL(), "n3", cfg, 1, trackedWorker{tr: tr, node: "n3"}, &m)
	// n2 is first: its view of the bucket is the reference, n1 is cut below.
	waitConverged(t, cfg, tr, []*node{b, a, c})
	var held []string
	for key, owner := range owners(cfg, []string{"n1", "n2", "n3"}) {
		if owner == "n1" {
			held = append(held, key)
		}
	}
	sort.Strings(held)
	if len(held) == 0 {
		t.Fatal("n1 holds nothing to take over")
	}

	proxy.Cut()
	cut := time.Now()
	waitFor(t, "n2 and n3 run everything n1 ran", func() bool {
		for _, key := range held {
			if on := tr.runningOn(key); on != "n2" && on != "n3" {
				return false
			}
		}
		return true
	})
	waitFor(t, "n1 counted itself out", func() bool { return !a.c.Status().Member })
	waitConverged(t, cfg, tr, []*node{b, c})
	tr.check(t)

	var slowest, fastest time.Duration
	var aStopLast time.Duration
	for _, key := range held {
		var stopA, startNew time.Time
		for _, iv := range tr.snapshot() {
			if iv.key != key {
				continue
			}
			if iv.node == "n1" && !iv.stop.IsZero() && iv.stop.After(cut) {
				stopA = iv.stop
			}
			if iv.node != "n1" && iv.start.After(cut) && startNew.IsZero() {
				startNew = iv.start
			}
		}
		if stopA.IsZero() || startNew.IsZero() || !stopA.Before(startNew) {
			t.Fatalf("%s: n1 stopped at %v, the new owner started at %v", key, stopA, startNew)
		}
		took := startNew.Sub(cut)
		if fastest == 0 || took < fastest {
			fastest = took
		}
		slowest = max(slowest, took)
		aStopLast = max(aStopLast, stopA.Sub(cut))
	}
	t.Logf("lease TTL %v: n1 stopped all %d resources by %v after the cut; takeover %v..%v after the cut",
		cfg.Lease.TTL, len(held), aStopLast.Round(time.Millisecond), fastest.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if bound := cfg.Lease.TTL + 2*time.Second; slowest > bound {
		t.Fatalf("takeover took %v, more than TTL + 2 s = %v", slowest, bound)
	}
	// Cut off, n1 has nothing left to release; Close returns by its
	// context although the watchers' consumer deletes are blackholed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.c.Close(ctx); err != nil {
		t.Fatalf("close n1: %v", err)
	}
	if st := a.c.Status(); st.Member || len(st.Partitions)+len(st.Platforms) != 0 {
		t.Fatalf("n1 after close: %+v", st)
	}
}

// TestCoordinatorSurvivesNATSNodeLoss: with R3 buckets on a 3-node
// JetStream cluster, the nodes keep every lease when one NATS server shuts
// down, and a node that closes afterwards still hands over.
func TestCoordinatorSurvivesNATSNodeLoss(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	urls := []string{servers[0].ClientURL(), servers[1].ClientURL()}
	cfg := testConfig(6 * time.Second)
	tr := newTracker()
	var m counters
	var nodes []*node
	for i, name := range []string{"n1", "n2", "n3"} {
		url := urls[i%2] + "," + urls[(i+1)%2]
		nodes = append(nodes, startNode(t, url, name, cfg, 3, trackedWorker{tr: tr, node: name}, &m))
	}
	waitConverged(t, cfg, tr, nodes)
	keys := owners(cfg, names(nodes))
	get := func(key string) (jetstream.KeyValueEntry, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nodes[0].kv.Get(ctx, key)
	}
	// renewed waits until every lease key has been written again.
	renewed := func(what string) {
		revs := map[string]uint64{}
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("last failure: %s", last)
			}
		}()
		waitFor(t, what+": every lease key readable", func() bool {
			for key := range keys {
				e, err := get(key)
				if err != nil {
					last = fmt.Sprintf("get %s: %v", key, err)
					return false
				}
				revs[key] = e.Revision()
			}
			return true
		})
		waitFor(t, what+": every lease renewed", func() bool {
			for key, rev := range revs {
				e, err := get(key)
				if err != nil || e.Revision() <= rev {
					return false
				}
			}
			return true
		})
	}
	before := len(tr.snapshot())
	changes := map[string]uint64{}
	for _, n := range nodes {
		changes[n.name] = n.c.Status().MemberChanges
	}

	servers[2].Shutdown()
	down := time.Now()
	// Renewal rounds for longer than a member TTL: a bucket watcher whose
	// consumer was on the lost server must not let a live member expire.
	for round := 1; round == 1 || time.Since(down) < 3*cfg.Member.TTL/2; round++ {
		renewed(fmt.Sprintf("round %d after a NATS server shut down", round))
	}
	if m.lost.Load() != 0 || len(tr.snapshot()) != before {
		t.Fatalf("after the NATS server shut down: %d leases lost, %d new intervals", m.lost.Load(), len(tr.snapshot())-before)
	}
	for _, n := range nodes {
		if st := n.c.Status(); st.MemberChanges != changes[n.name] || len(st.Members) != 3 {
			t.Fatalf("%s: members changed %d times after a NATS server shut down; members %v", n.name, st.MemberChanges-changes[n.name], st.Members)
		}
	}
	closeNode(t, nodes[2])
	waitConverged(t, cfg, tr, nodes[:2])
	tr.check(t)
}

// TestCoordinatorPlatformFallback: a platform's preferred owner is a member
// that never takes it; after the grace period the other node takes it, and
// the partitions the silent member wins stay unheld until it leaves.
func TestCoordinatorPlatformFallback(t *testing.T) {
	s := natstest.StartServer(t)
	cfg := testConfig(3 * time.Second)
	cfg.Platforms = []string{"telegram-main"}
	cfg.Grace = time.Second
	ghost := ""
	for i := 0; ghost == ""; i++ {
		if name := fmt.Sprintf("ghost-%d", i); OwnerOf("telegram-main", []string{name, "n1"}) == name {
			ghost = name
		}
	}
	js := connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBuckets(ctx, js, "herald", cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The ghost announces itself and the platform, and renews, but runs no coordinator.
	value := fmt.Appendf(nil, `{"node":%q,"version":"test","platforms":["telegram-main"]}`, ghost)
	var m counters
	g, err := newLease(b.Members, KindMember, ghost, ghost, value, cfg.Member, func(context.Context) {}, &m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := g.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("ghost joins: %v, %v", ok, err)
	}
	tr := newTracker()
	started := time.Now()
	n1 := startNode(t, s.ClientURL(), "n1", cfg, 1, trackedWorker{tr: tr, node: "n1"}, &m)
	key := Resource{Kind: KindPlatform, Platform: "telegram-main"}.Key()
	waitFor(t, "n1 takes the platform the ghost does not", func() bool { return tr.runningOn(key) == "n1" })
	var took time.Time
	for _, iv := range tr.snapshot() {
		if iv.key == key {
			took = iv.start
		}
	}
	if took.Sub(started) < cfg.Grace {
		t.Fatalf("n1 took the platform %v after it started, before the grace %v", took.Sub(started), cfg.Grace)
	}
	var mine, ghosts []int
	for p := 0; p < cfg.Partitions; p++ {
		if Owner(p, []string{ghost, "n1"}) == "n1" {
			mine = append(mine, p)
		} else {
			ghosts = append(ghosts, p)
		}
	}
	waitFor(t, "n1 holds its partitions", func() bool { return slices.Equal(n1.c.Status().Partitions, mine) })
	for _, p := range ghosts {
		if on := tr.runningOn(Resource{Kind: KindPartition, Partition: p}.Key()); on != "" {
			t.Fatalf("partition %d of the live ghost runs on %s", p, on)
		}
	}
	t.Logf("n1 took the platform %v after it started (grace %v)", took.Sub(started).Round(time.Millisecond), cfg.Grace)

	// The ghost leaves: n1 takes everything.
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, cfg, tr, []*node{n1})
	tr.check(t)
}

// TestCoordinatorDecline: the preferred owner of a platform declines it.
// It releases the lease, announces itself without the platform, and the
// preferred owner among the others takes it over (the grace, an hour here,
// is not what moves it). When the decline ends the first node takes the
// platform back. No
// two nodes run it at once; a platform the node does not run is ignored.
func TestCoordinatorDecline(t *testing.T) {
	s := natstest.StartServer(t)
	cfg := testConfig(3 * time.Second)
	cfg.Grace = time.Hour
	tr, m, nodes := startThree(t, s.ClientURL(), cfg)
	const platform = "telegram-main"
	key := Resource{Kind: KindPlatform, Platform: platform}.Key()
	first := OwnerOf(platform, names(nodes))
	var decliner *node
	var others []string
	for _, n := range nodes {
		if n.name == first {
			decliner = n
		} else {
			others = append(others, n.name)
		}
	}
	next := OwnerOf(platform, others)

	decliner.c.Decline("no-such-platform", time.Hour, "ignored")
	declined := time.Now()
	decliner.c.Decline(platform, time.Hour, "credentials rejected")
	waitFor(t, platform+" on "+next, func() bool { return tr.runningOn(key) == next })
	took := time.Since(declined)
	st := decliner.c.Status()
	if len(st.Declined) != 1 || st.Declined[0].Platform != platform || st.Declined[0].Why != "credentials rejected" ||
		slices.Contains(st.Platforms, platform) {
		t.Fatalf("decliner's status: declined %+v, platforms %v", st.Declined, st.Platforms)
	}
	for _, n := range nodes {
		waitFor(t, n.name+" sees "+first+" announce itself without "+platform, func() bool {
			ms := n.c.Status().Members
			i := slices.IndexFunc(ms, func(mb Member) bool { return mb.Node == first })
			return i >= 0 && !slices.Contains(ms[i].Platforms, platform)
		})
	}
	t.Logf("%s declined %s: %s took it %v later (renew %v)", first, platform, next, took.Round(time.Millisecond), cfg.Lease.Renew)

	// The decline ends: the preferred owner takes the platform back.
	decliner.c.Decline(platform, 500*time.Millisecond, "short")
	waitFor(t, platform+" back on "+first, func() bool { return tr.runningOn(key) == first })
	waitConverged(t, cfg, tr, nodes)
	if st := decliner.c.Status(); len(st.Declined) != 0 {
		t.Fatalf("after the decline: declined %+v", st.Declined)
	}
	tr.check(t)
	if m.lost.Load() != 0 {
		t.Fatalf("%d leases lost; none should be", m.lost.Load())
	}
}

// TestCoordinatorRejectsBadConfig: a node id or platform name that is not
// a valid key, and buckets whose TTL is not the configured one, are clear
// errors before anything is written.
func TestCoordinatorRejectsBadConfig(t *testing.T) {
	s := natstest.StartServer(t)
	js := connect(t, s.ClientURL())
	cfg := testConfig(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBuckets(ctx, js, "herald", cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := trackedWorker{tr: newTracker(), node: "n1"}
	for _, node := range []string{"", "a b", "a.", ".a", "a..b", "a*", strings.Repeat("x", 65)} {
		c := cfg
		c.Node = node
		if _, err := NewCoordinator(c, js, b, w, &counters{}, quietLog()); err == nil {
			t.Errorf("node id %q accepted", node)
		}
	}
	c := cfg
	c.Node = "n1.example"
	c.Platforms = []string{"Telegram/main"}
	if _, err := NewCoordinator(c, js, b, w, &counters{}, quietLog()); err == nil {
		t.Error("platform name Telegram/main accepted")
	}
	c.Platforms = nil
	c.Lease.TTL = 4 * time.Second
	co, err := NewCoordinator(c, js, b, w, &counters{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx); err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("start with a bucket of another ttl: %v", err)
	}
	if err := co.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBucketsNames(t *testing.T) {
	s := natstest.StartServer(t)
	js := connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBuckets(ctx, js, "", testConfig(3*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.Leases.Bucket() != "herald_leases" || b.Members.Bucket() != "herald_members" {
		t.Fatalf("buckets %s, %s", b.Leases.Bucket(), b.Members.Bucket())
	}
	if _, err := OpenBuckets(ctx, js, "a.b", testConfig(3*time.Second), 1); err == nil {
		t.Fatal("prefix a.b accepted")
	}
}

// silentStatus is a bucket whose first status requests go unanswered, as
// while its stream elects a leader.
type silentStatus struct {
	jetstream.KeyValue
	silent int
}

func (s *silentStatus) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	if s.silent > 0 {
		s.silent--
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.KeyValue.Status(ctx)
}

// TestBucketStatusRetries: an unanswered status request is sent again
// until the start's context ends.
func TestBucketStatusRetries(t *testing.T) {
	js := connect(t, natstest.StartServer(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := LeaseBucket(ctx, js, "retry_leases", 5*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bucketStatus(ctx, &silentStatus{KeyValue: kv, silent: 2})
	if err != nil || st.TTL() != 5*time.Second {
		t.Fatalf("status after two unanswered requests: %v, %v", st, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelShort()
	if _, err := bucketStatus(short, &silentStatus{KeyValue: kv, silent: 100}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("status with every request unanswered: %v, want the deadline", err)
	}
}
