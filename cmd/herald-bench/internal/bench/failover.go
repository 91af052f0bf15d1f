// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// The failover measure runs at the lease level: three cluster.Coordinators
// in the bench process, one per node, on a 3-server JetStream cluster, each
// node with a NATS connection of its own through a proxy. The node holding
// the platform lease is killed by closing its proxy and its connection at
// once (from the cluster's side, what a SIGKILL of the process looks like:
// it never renews or releases anything again); failover is the time from
// there to another node's Worker.Start of the platform.

// failoverPlatform is the platform instance the nodes compete for.
const failoverPlatform = "telegram"

// failoverTimeout bounds one wait of the measure: for the cluster to
// settle, or for the platform to move.
func failoverTimeout(ttl time.Duration) time.Duration { return 3*ttl + 30*time.Second }

// platformStart is a node's Worker.Start of the platform.
type platformStart struct {
	node string
	at   time.Time
}

// startRecorder is the nodes' Worker: it reports each start of the
// platform; partitions run nothing.
type startRecorder struct {
	node   string
	starts chan<- platformStart
}

func (w startRecorder) Start(r cluster.Resource) {
	if r.Kind != cluster.KindPlatform {
		return
	}
	select {
	case w.starts <- platformStart{w.node, time.Now()}:
	default: // the channel is sized for every start of a repetition
	}
}

func (startRecorder) Stop(context.Context, cluster.Resource) {}

// noMetrics is the nodes' cluster.Metrics.
type noMetrics struct{}

func (noMetrics) LeaseAcquired(string) {}
func (noMetrics) LeaseLost(string)     {}
func (noMetrics) LeaseReleased(string) {}

// leaseNode is one node of the measure.
type leaseNode struct {
	name  string
	proxy *natstest.Proxy
	nc    *nats.Conn
	coord *cluster.Coordinator
}

// kill cuts the node off for good: the proxy's listener and connections
// close first, so nothing more reaches NATS, then the client.
func (n *leaseNode) kill() {
	n.proxy.Close()
	n.nc.Close()
}

// close stops the node's coordinator (releasing its leases if it can)
// within ctx, then its connection and proxy.
func (n *leaseNode) close(ctx context.Context) {
	if n.coord != nil {
		_ = n.coord.Close(ctx)
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.proxy != nil {
		n.proxy.Close()
	}
}

// failoverRun is one repetition: three nodes on fresh buckets, the holder
// killed, the time until another node starts the platform.
func failoverRun(ctx context.Context, servers []*server.Server, prefix string, ttl time.Duration) (time.Duration, error) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	starts := make(chan platformStart, 64)
	lease := cluster.LeaseConfig{TTL: ttl}
	var nodes []*leaseNode
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, n := range nodes {
			n.close(cctx)
		}
	}()
	for i, s := range servers {
		n := &leaseNode{name: fmt.Sprintf("node%d", i)}
		nodes = append(nodes, n)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		n.proxy = natstest.Forward(ln, s.Addr().String())
		n.nc, err = nats.Connect(n.proxy.URL(), nats.Name(n.name), nats.Timeout(3*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		if err != nil {
			return 0, fmt.Errorf("bench: failover: connect %s: %w", n.name, err)
		}
		js, err := jetstream.New(n.nc)
		if err != nil {
			return 0, fmt.Errorf("bench: failover: %w", err)
		}
		cfg := cluster.Config{Node: n.name, Platforms: []string{failoverPlatform}, Lease: lease, Member: lease}
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := cluster.OpenBuckets(octx, js, prefix, cfg, len(servers))
		cancel()
		if err != nil {
			return 0, fmt.Errorf("bench: failover: %w", err)
		}
		if n.coord, err = cluster.NewCoordinator(cfg, js, b, startRecorder{n.name, starts}, noMetrics{}, logrus.NewEntry(log)); err != nil {
			return 0, fmt.Errorf("bench: failover: %w", err)
		}
		if err := n.coord.Start(ctx); err != nil {
			return 0, fmt.Errorf("bench: failover: %w", err)
		}
	}
	holder, err := settled(ctx, nodes, failoverTimeout(ttl))
	if err != nil {
		return 0, err
	}
	// Starts before the kill (a fallback holder handing over to the
	// preferred one while the members became known) are not failovers.
	var acquired time.Time
	for len(starts) > 0 {
		if s := <-starts; s.node == holder.name {
			acquired = s.at
		}
	}
	if err := pause(ctx, time.Until(killAt(acquired, time.Now(), ttl/5, rand.N(ttl/5)))); err != nil {
		return 0, err
	}
	t0 := time.Now()
	holder.kill()
	deadline := time.NewTimer(failoverTimeout(ttl))
	defer deadline.Stop()
	for {
		select {
		case s := <-starts:
			if s.node != holder.name {
				return s.at.Sub(t0), nil
			}
		case <-deadline.C:
			return 0, fmt.Errorf("bench: failover: no node took %s within %v of killing %s", failoverPlatform, failoverTimeout(ttl), holder.name)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// killAt is when to kill a holder that took the lease at acquired and
// renews it every renew: phase (in [0, renew)) after one of its renewals,
// the first such time after now. A holder killed at a random phase of its
// renewal period is what a crash at a random moment looks like; killing
// it right after it took the lease would always find the lease fresh.
func killAt(acquired, now time.Time, renew, phase time.Duration) time.Time {
	t := acquired.Add(renew + phase)
	for !t.After(now) {
		t = t.Add(renew)
	}
	return t
}

// settled waits until every node sees all the nodes as members and
// exactly one runs the platform, and returns that one.
func settled(ctx context.Context, nodes []*leaseNode, timeout time.Duration) (*leaseNode, error) {
	deadline := time.Now().Add(timeout)
	for {
		var holders []*leaseNode
		members := true
		for _, n := range nodes {
			st := n.coord.Status()
			members = members && len(st.Members) == len(nodes)
			if slices.Contains(st.Platforms, failoverPlatform) {
				holders = append(holders, n)
			}
		}
		if members && len(holders) == 1 {
			return holders[0], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench: failover: the %d nodes did not settle within %v (%d hold %s)", len(nodes), timeout, len(holders), failoverPlatform)
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// failoverTTLs are the lease TTLs measured: the default of cluster.lease_ttl
// and its minimum.
var failoverTTLs = []time.Duration{10 * time.Second, 5 * time.Second}

// 8. Platform failover at the lease level.
func (r *runner) failover(ctx context.Context) error {
	servers, err := natstest.Run(natstest.Config{Dir: filepath.Join(r.e.tmp, "nats-failover"), N: 3})
	if err != nil {
		return fmt.Errorf("bench: nats: %w", err)
	}
	defer natstest.Shutdown(servers)
	t := Table{Header: []string{"lease_ttl", "n", "median", "min–max", "max − lease_ttl", "bound (lease_ttl + 2 s)"}}
	var errs []error
	for _, ttl := range failoverTTLs {
		var ds []time.Duration
		for i := range r.plan.failoverReps {
			d, err := failoverRun(ctx, servers, fmt.Sprintf("fo%d_%d", int(ttl.Seconds()), i), ttl)
			if err != nil {
				errs = append(errs, fmt.Errorf("lease_ttl %v, repetition %d: %w", ttl, i+1, err))
				if ctx.Err() != nil {
					return errors.Join(errs...)
				}
				continue
			}
			ds = append(ds, d)
			r.logf("  lease_ttl %v: failover %s", ttl, ms(d.Seconds()))
		}
		s := Summarize(Seconds(ds))
		t.Rows = append(t.Rows, failoverRow(ttl, s))
		r.goals = append(r.goals, goalFailover(ttl, s))
	}
	r.rep.Add("Platform failover (lease level)",
		Para(fmt.Sprintf(`How long a platform instance (one Telegram bot, say) is without a poller when the
node holding it dies. Measured at the lease level, not with herald processes: herald's daemon
does not run cluster mode yet. Three pkg/cluster Coordinators run in the bench process, one
per node, each with its own NATS connection through a TCP proxy to its own server of a
3-server JetStream cluster (nats-server %s, in the bench process too), all offering the
platform %q; their buckets have 3 replicas, and the membership and the leases use the same
TTL (lease_ttl), renewed every fifth of it, as herald's cluster configuration sets them. Once
all three see each other and one runs the platform, that node is killed: its proxy closes its
listener and connections and its client closes, so it never renews or releases anything
again, as after a SIGKILL. Failover is the time from the kill to another node's Worker.Start
of the platform, which in herald starts the adapter (its first getUpdates follows at once).
The holder is killed at a random phase of its renewal period (after at least one
renewal), as a crash at a random moment would find it. Each repetition starts on fresh
buckets; %d repetitions per lease_ttl. The servers expire the killed node's keys lease_ttl
after its last write; the other nodes count a key as live until lease_ttl after they saw its
last write (an expiry sends no event) and look again every 250 ms.`, server.VERSION, failoverPlatform, r.plan.failoverReps)),
		t)
	return errors.Join(errs...)
}

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

// goalFailover judges the slowest failover: every one must end within
// lease_ttl + 2 s. It is an absolute bound, not a ratio: the TTL sets it,
// not the machine's speed.
func goalFailover(ttl time.Duration, s Summary) Goal {
	bound := ttl + failoverSlack
	g := Goal{Name: fmt.Sprintf("Platform failover at the lease level, lease_ttl %v", ttl),
		Target: fmt.Sprintf("every failover ≤ lease_ttl + %v (%s)", failoverSlack, ms(bound.Seconds()))}
	if s.N == 0 {
		g.Verdict = Invalid
		return g
	}
	g.Measured = fmt.Sprintf("max %s, median %s (n=%d)", ms(s.Max), ms(s.Median), s.N)
	g.Verdict = verdict(s.Max <= bound.Seconds())
	return g
}
