// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
	"github.com/heraldgw/herald/pkg/testsupport/systemdbox"
)

// The herald-level failover measure: three herald nodes, each a
// herald.service under the systemd of a sandbox of its own (a machine of
// its own, as far as herald can tell), in cluster mode on a 3-server
// JetStream cluster run by the bench, each node connected to its own
// server. All three poll one Telegram bot on the bench's fake Bot API.
// The node holding the bot's platform lease is SIGKILLed with restarts
// off (a lost machine); failover is the time from the kill to the first
// getUpdates of another node.

// Addresses in each node's network namespace.
const (
	nodeNATSAddr = "127.0.0.1:4222"
	nodeTGAddr   = "127.0.0.1:8081"
	// clusterPrefix is store.nats.prefix of the nodes: its buckets are
	// <prefix>_members and <prefix>_leases.
	clusterPrefix = "benchcluster"
	// tgPollTimeout is the nodes' Telegram poll_timeout.
	tgPollTimeout = 5 * time.Second
)

// tgToken is the fake bot's token, in the Bot API's format.
const tgToken = "123456:bench-failover-token_0123456789"

// tgPoll is a getUpdates that arrived at the fake.
type tgPoll struct {
	node int
	at   time.Time
}

// tgFake is the smallest Bot API a herald Telegram poller runs against:
// getMe answers a bot, getUpdates is held for its timeout and answered
// with no update. Each node reaches it through a listener of its own, in
// its network namespace, so every request is known by node.
type tgFake struct {
	polls chan tgPoll // every getUpdates, as it arrives

	mu       sync.Mutex
	inFlight map[int]int // node -> getUpdates being held
	overlap  int         // most nodes polling at once

	srvs []*http.Server
	wg   sync.WaitGroup
}

func newTGFake() *tgFake {
	return &tgFake{polls: make(chan tgPoll, 4096), inFlight: map[int]int{}}
}

// serve answers node's requests on ln until Close.
func (f *tgFake) serve(node int, ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.handle(node, w, r) }),
		ReadHeaderTimeout: 10 * time.Second}
	f.srvs = append(f.srvs, srv)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = srv.Serve(ln)
	}()
}

// Close stops the servers; held requests end at once.
func (f *tgFake) Close() {
	for _, s := range f.srvs {
		s.Close()
	}
	f.wg.Wait()
}

func (f *tgFake) handle(node int, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+tgToken+"/")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
		return
	}
	switch method {
	case "getMe":
		fmt.Fprint(w, `{"ok":true,"result":{"id":123456,"is_bot":true,"first_name":"bench","username":"bench_bot"}}`)
	case "getUpdates":
		f.getUpdates(node, w, r)
	default:
		fmt.Fprint(w, `{"ok":true,"result":true}`)
	}
}

func (f *tgFake) getUpdates(node int, w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var p struct {
		Timeout int `json:"timeout"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&p)
	select {
	case f.polls <- tgPoll{node, at}:
	default: // nobody is reading: the measure is between repetitions
	}
	f.mu.Lock()
	f.inFlight[node]++
	n := 0
	for _, c := range f.inFlight {
		if c > 0 {
			n++
		}
	}
	f.overlap = max(f.overlap, n)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[node]--
		f.mu.Unlock()
	}()
	hold := time.NewTimer(min(time.Duration(p.Timeout)*time.Second, 30*time.Second))
	defer hold.Stop()
	select {
	case <-hold.C:
	case <-r.Context().Done():
		return
	}
	fmt.Fprint(w, `{"ok":true,"result":[]}`)
}

// pollers returns the nodes with a getUpdates held now.
func (f *tgFake) pollers() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for n, c := range f.inFlight {
		if c > 0 {
			out = append(out, n)
		}
	}
	return out
}

// maxPollers is the most nodes that polled at once so far.
func (f *tgFake) maxPollers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overlap
}

// clusterConf is a node's herald configuration.
type clusterConf struct {
	Node     string
	LeaseTTL time.Duration
}

var clusterTemplate = template.Must(template.New("herald.yaml").Parse(`# herald-bench configuration: a cluster node
log:
  level: info
store:
  backend: nats
  nats:
    urls: ["nats://` + nodeNATSAddr + `"]
    replicas: 3
    prefix: ` + clusterPrefix + `
cluster:
  enabled: true
  node_id: {{.Node}}
  lease_ttl: {{.LeaseTTL}}
agent:
  kind: echo
platforms:
  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: http://` + nodeTGAddr + `
    poll_timeout: ` + tgPollTimeout.String() + `
`))

func (c clusterConf) render() string {
	var b strings.Builder
	if err := clusterTemplate.Execute(&b, c); err != nil {
		panic(err) // the template is a constant: a failure is a bug here
	}
	return b.String()
}

// noRestartDropIn turns systemd's restart off, so that a SIGKILLed node
// stays down like a lost machine.
const noRestartDropIn = "[Service]\nRestart=no\n"

// heraldNode is one herald node of the measure.
type heraldNode struct {
	name  string
	sbx   *systemdbox.Sandbox
	proxy *natstest.Proxy
}

// bootNodes boots n sandboxes with herald installed, configured as
// cluster nodes, each reaching server i of the cluster and the fake
// through listeners in its network namespace. On an error it closes what
// it booted.
func (e *env) bootNodes(ctx context.Context, servers []string, fake *tgFake, ttl time.Duration) (nodes []*heraldNode, err error) {
	defer func() {
		if err != nil {
			closeNodes(nodes)
			nodes = nil
		}
	}()
	for i, addr := range servers {
		n := &heraldNode{name: fmt.Sprintf("node%d", i)}
		bctx, cancel := context.WithTimeout(ctx, systemdbox.DefaultBootTimeout)
		n.sbx, err = systemdbox.Boot(bctx, systemdbox.Options{
			Name:   fmt.Sprintf("herald-bench-%d-%s", os.Getpid(), n.name),
			Shares: []systemdbox.Share{{Host: filepath.Join(e.tmp, "bin"), Guest: shareGuest}},
		})
		cancel()
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
		ln, err := n.sbx.Listen("tcp", nodeNATSAddr)
		if err != nil {
			return nodes, err
		}
		n.proxy = natstest.Forward(ln, addr)
		tl, err := n.sbx.Listen("tcp", nodeTGAddr)
		if err != nil {
			return nodes, err
		}
		fake.serve(i, tl)
		files := map[string]string{
			"/etc/systemd/system/herald.service.d/bench.conf": noRestartDropIn,
			"/etc/herald/credentials/telegram-token":          tgToken + "\n",
		}
		if _, err := e.install(ctx, n.sbx, files, ""); err != nil {
			return nodes, err
		}
		if err := n.sbx.WriteFile("/etc/herald/herald.yaml", []byte(clusterConf{Node: n.name, LeaseTTL: ttl}.render()), 0o644); err != nil {
			return nodes, err
		}
		if _, err := runIn(ctx, n.sbx, "chmod", "0600", "/etc/herald/credentials/telegram-token"); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

func closeNodes(nodes []*heraldNode) {
	for _, n := range nodes {
		_ = n.sbx.Close()
		if n.proxy != nil {
			n.proxy.Close()
		}
	}
}

// startNode starts a node's herald (after a kill: clearing the failed
// state first) and waits for the start job. A failed start's error
// carries the end of the unit's journal.
func startNode(ctx context.Context, n *heraldNode) error {
	_, _ = n.sbx.Systemctl(ctx, "reset-failed", "herald.service")
	if _, err := n.sbx.Systemctl(ctx, "start", "herald.service"); err != nil {
		tail, _ := runIn(ctx, n.sbx, "journalctl", "--no-pager", "-o", "cat", "-n", "5", "-u", "herald.service")
		return fmt.Errorf("%w; journal: %s", err, strings.TrimSpace(tail))
	}
	return nil
}

// clusterView reads the cluster's buckets: the live members, and the
// holder of the Telegram platform's lease.
type clusterView struct {
	members, leases jetstream.KeyValue
}

func openClusterView(ctx context.Context, js jetstream.JetStream) (*clusterView, error) {
	var v clusterView
	var err error
	if v.members, err = js.KeyValue(ctx, clusterPrefix+"_members"); err != nil {
		return nil, fmt.Errorf("bench: members bucket: %w", err)
	}
	if v.leases, err = js.KeyValue(ctx, clusterPrefix+"_leases"); err != nil {
		return nil, fmt.Errorf("bench: leases bucket: %w", err)
	}
	return &v, nil
}

// state returns the member keys and the platform's holder ("" if none).
func (v *clusterView) state(ctx context.Context) (members []string, holder string, err error) {
	lister, err := v.members.ListKeys(ctx)
	if err != nil {
		return nil, "", err
	}
	for k := range lister.Keys() {
		members = append(members, k)
	}
	e, err := v.leases.Get(ctx, cluster.Resource{Kind: cluster.KindPlatform, Platform: failoverPlatform}.Key())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return members, "", nil
	case err != nil:
		return members, "", err
	}
	return members, string(e.Value()), nil
}

// settleStable is how long the cluster's state must hold before a kill:
// longer than a hand-over of the platform to a node that joined (a
// release, then an acquire at the delete's event), a few of the
// coordinators' 250 ms looks.
const settleStable = 2 * time.Second

// waitSettled waits until every node is a member, one holds the platform
// lease, and that node, and only it, polls, all of it unchanged for
// settleStable.
func waitSettled(ctx context.Context, v *clusterView, nodes []*heraldNode, fake *tgFake, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	var last string
	since, prev := time.Time{}, -1
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, holder, err := v.state(sctx)
		cancel()
		polling := fake.pollers()
		if err == nil && len(members) == len(nodes) && len(polling) == 1 && nodes[polling[0]].name == holder {
			if polling[0] != prev {
				since, prev = time.Now(), polling[0]
			}
			if time.Since(since) >= settleStable {
				return prev, nil
			}
		} else {
			prev = -1
		}
		last = fmt.Sprintf("members %v, lease holder %q, nodes polling %v, error %v", members, holder, polling, err)
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: the cluster did not settle within %v: %s", timeout, last)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// failoverPlatform is the platform instance the nodes compete for.
const failoverPlatform = "telegram"

// failoverTimeout bounds one wait of the measure: for the cluster to
// settle, or for the platform to move.
func failoverTimeout(ttl time.Duration) time.Duration { return 3*ttl + 30*time.Second }

// failoverRow is a row of the failover table.
func failoverRow(ttl time.Duration, s Summary) []string {
	if s.N == 0 {
		return []string{ttl.String(), "0", "–", "–", "–", ms((ttl + failoverSlack).Seconds())}
	}
	return []string{ttl.String(), fmt.Sprint(s.N), ms(s.Median), msRange(s), fmt.Sprintf("%+.0f ms", (s.Max-ttl.Seconds())*1000),
		ms((ttl + failoverSlack).Seconds())}
}

// failoverSlack is what the issue allows beyond the lease TTL for a
// platform to move to another node.
const failoverSlack = 2 * time.Second

// goalFailover judges the slowest failover of a platform between herald
// nodes: every one must end within lease_ttl + 2 s. It is an absolute
// bound, not a ratio: the TTL sets it, not the machine's speed.
func goalFailover(ttl time.Duration, s Summary) Goal {
	bound := ttl + failoverSlack
	g := Goal{Name: fmt.Sprintf("Telegram failover between herald nodes (SIGKILL of the holder), lease_ttl %v", ttl),
		Target: fmt.Sprintf("every failover ≤ lease_ttl + %v (%s)", failoverSlack, ms(bound.Seconds()))}
	if s.N == 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("max %s, median %s (n=%d)", ms(s.Max), ms(s.Median), s.N)
	g.Verdict = verdict(s.Max <= bound.Seconds())
	return g
}

// heraldFailoverTTL is the lease_ttl of the herald-level measure: the
// default of cluster.lease_ttl.
const heraldFailoverTTL = 10 * time.Second

// 8. Platform failover between herald nodes.
func (r *runner) failover(ctx context.Context) error {
	const ttl = heraldFailoverTTL
	servers, err := natstest.Run(natstest.Config{Dir: filepath.Join(r.e.tmp, "nats-cluster"), N: 3})
	if err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	defer natstest.Shutdown(servers)
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr().String())
	}
	fake := newTGFake()
	defer fake.Close()
	r.logf("  booting 3 herald nodes")
	nodes, err := r.e.bootNodes(ctx, addrs, fake, ttl)
	if err != nil {
		return err
	}
	defer closeNodes(nodes)
	for _, n := range nodes {
		if err := startNode(ctx, n); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	nc, err := nats.Connect(servers[0].ClientURL(), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	view, err := openClusterView(vctx, js)
	cancel()
	if err != nil {
		return err
	}
	var ds []time.Duration
	for i := range r.plan.failoverReps {
		holder, err := waitSettled(ctx, view, nodes, fake, failoverTimeout(ttl))
		if err != nil {
			return fmt.Errorf("repetition %d: %w", i+1, err)
		}
		// A crash at a random moment of the holder's renewal period.
		if err := pause(ctx, rand.N(ttl/5)); err != nil {
			return err
		}
		for len(fake.polls) > 0 {
			<-fake.polls
		}
		t0 := time.Now()
		if _, err := nodes[holder].sbx.Systemctl(ctx, "kill", "--signal=SIGKILL", "herald.service"); err != nil {
			return fmt.Errorf("repetition %d: kill %s: %w", i+1, nodes[holder].name, err)
		}
		d, err := nextPoller(ctx, fake.polls, holder, t0, failoverTimeout(ttl))
		if err != nil {
			return fmt.Errorf("repetition %d: %w", i+1, err)
		}
		ds = append(ds, d)
		r.logf("  herald nodes, lease_ttl %v: %s killed, failover %s", ttl, nodes[holder].name, ms(d.Seconds()))
		if err := startNode(ctx, nodes[holder]); err != nil {
			return fmt.Errorf("repetition %d: restart %s: %w", i+1, nodes[holder].name, err)
		}
	}
	s := Summarize(Seconds(ds))
	r.goals = append(r.goals, goalFailover(ttl, s))
	r.rep.Add("Platform failover (herald nodes)",
		Para(fmt.Sprintf(`How long one Telegram bot is without a poller when the herald node holding its
platform lease dies. Three herald nodes, each herald.service (the shipped unit, with
Restart=no added so that a killed node stays down like a lost machine) under the systemd of
a sandbox of its own, in cluster mode (cluster.enabled, lease_ttl %v, store.backend nats with
3 replicas) on a 3-server JetStream cluster run by the bench, each node connected to its own
server through a proxy in its network namespace. All three have the same bot configured
against the bench's fake Bot API (getUpdates held for poll_timeout %v). Once every node is a
member, one holds the platform's lease and it alone polls, the bench waits a random part of
the renewal period (lease_ttl/5) and SIGKILLs that node's herald (`+"`systemctl kill --signal=SIGKILL`"+`).
Failover is the time from just before the kill to the first getUpdates of another node. The
killed node is then started again and the cluster settles before the next repetition (%d).
The most nodes the fake saw polling at once: %d.`, ttl, tgPollTimeout, r.plan.failoverReps, fake.maxPollers())),
		Table{Header: []string{"lease_ttl", "n", "median", "min–max", "max − lease_ttl", "bound (lease_ttl + 2 s)"}, Rows: [][]string{failoverRow(ttl, s)}})
	return nil
}

// nextPoller waits for the first getUpdates of a node other than the
// killed one and returns its time after t0.
func nextPoller(ctx context.Context, polls <-chan tgPoll, killed int, t0 time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case p := <-polls:
			if p.node != killed && p.at.After(t0) {
				return p.at.Sub(t0), nil
			}
		case <-deadline.C:
			return 0, fmt.Errorf("bench: no other node polled within %v of the kill", timeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
