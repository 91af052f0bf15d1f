// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/version"
)

// clusterNode is this node's part in cluster mode (cluster.enabled): the
// Coordinator that holds the partition and platform leases this node
// should hold, the cluster.Worker that follows them, and the wakes between
// nodes.
//
//   - A partition lease runs the partition in the dispatcher
//     (StartPartition, StopPartition): this node runs the turns and sends
//     the replies of the partition's conversations.
//   - A platform lease runs the intake of a leased platform instance
//     (adapter.Leased): a fresh adapter built from the configuration,
//     started with the dispatcher as its inbox, stopped when the lease
//     ends. The daemon's own instance of a leased platform is never
//     started: the dispatcher sends through it, on whichever node owns
//     the conversation, whoever holds the platform lease.
//   - A node that stores work for a partition it does not own (a message
//     that reached it, a send of the send API) publishes a wake on the
//     core NATS subject <prefix>.wake.<partition>; every node subscribes
//     to <prefix>.wake.* and passes the wake to its dispatcher, which
//     reads the partition's pending work at once if it owns it. A wake
//     lost (NATS down for a moment) delays the work until the
//     dispatcher's periodic refresh.
//
// The coordinator starts once the JetStream store is open (at start, or in
// natsRunner when NATS was down then), after the dispatcher started; it is
// closed in the stop sequence after the drain, which releases every lease
// so that other nodes take the work at once.
type clusterNode struct {
	d   *daemon
	cfg config.Cluster
	// wake is the prefix of the wake subjects: "<store.nats.prefix>.wake."
	wake string
	log  *logrus.Entry

	coord atomic.Pointer[cluster.Coordinator]
	// startErr is why the last start failed ("" before any).
	startErr atomic.Pointer[string]
	// nc is the connection wakes are published on, once the store is
	// open.
	nc atomic.Pointer[nats.Conn]

	mu      sync.Mutex
	sub     *nats.Subscription
	stopped chan struct{} // ends the status poker
	pokes   sync.WaitGroup
	intake  map[string]*platform // leased platforms whose intake runs here
	// lastUp is, per leased platform whose lease this node holds, when its
	// intake started or was last seen connected; declines counts the
	// platform's declines since its intake was last seen connected.
	lastUp   map[string]time.Time
	declines map[string]int
}

// A leased platform that cannot run on this node is handed over to
// another: its intake could not be built or started, it reported a fatal
// error (credentials rejected, say), or it has not connected for
// intakeStuckAfter while another member runs the platform (this node's
// route to the platform is broken, say). The node declines the platform
// (cluster.Coordinator.Decline) for declineFirst, doubled at each decline
// until the intake is seen connected, up to declineMax; then it runs the
// platform again when it is the preferred owner or the platform is free.
const (
	intakeStuckAfter = 2 * time.Minute
	declineFirst     = time.Minute
	declineMax       = 16 * time.Minute
)

var _ cluster.Worker = (*clusterNode)(nil)

func newClusterNode(d *daemon, cfg *config.Config, log *logrus.Entry) *clusterNode {
	return &clusterNode{d: d, cfg: cfg.Cluster, wake: cfg.Store.NATS.Prefix + ".wake.", log: log,
		intake: map[string]*platform{}, stopped: make(chan struct{}), lastUp: map[string]time.Time{}, declines: map[string]int{}}
}

// leasedPlatforms names the enabled platform instances of cfg whose intake
// runs on the holder of their lease, sorted.
func leasedPlatforms(cfg *config.Config) []string {
	var names []string
	for name, pc := range cfg.Platforms {
		if pc.IsEnabled() && adapter.Leased(pc.Type) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// coordinatorConfig is the cluster.Config of this node.
func (n *clusterNode) coordinatorConfig(cfg *config.Config, httpAddr string) cluster.Config {
	lease := cluster.LeaseConfig{TTL: n.cfg.LeaseTTL}
	return cluster.Config{
		Node:       n.cfg.NodeID,
		Version:    version.Version,
		HTTP:       httpAddr,
		Partitions: n.cfg.Partitions,
		Platforms:  leasedPlatforms(cfg),
		Lease:      lease,
		Member:     lease,
	}
}

// start opens the cluster's buckets on the store's connection, subscribes
// to the wakes and starts the coordinator. It does nothing once it
// succeeded; a failure leaves nothing behind and may be retried.
func (n *clusterNode) start(ctx context.Context) error {
	if n.coord.Load() != nil {
		return nil
	}
	err := n.startCoordinator(ctx)
	if err != nil {
		msg := err.Error()
		n.startErr.Store(&msg)
	}
	return err
}

func (n *clusterNode) startCoordinator(ctx context.Context) error {
	nc := n.d.nats.conn()
	if nc == nil {
		return errStoreUnavailable
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("cluster: jetstream: %w", err)
	}
	n.d.mu.Lock()
	cfg := n.d.cfg
	n.d.mu.Unlock()
	ccfg := n.coordinatorConfig(cfg, n.d.httpLn.Addr().String())
	octx, cancel := context.WithTimeout(ctx, natsOpenTimeout)
	defer cancel()
	b, err := cluster.OpenBuckets(octx, js, cfg.Store.NATS.Prefix, ccfg, cfg.Store.NATS.Replicas)
	if err != nil {
		return err
	}
	c, err := cluster.NewCoordinator(ccfg, js, b, n, n.d.metrics.Cluster(), n.log)
	if err != nil {
		return err
	}
	sub, err := nc.Subscribe(n.wake+"*", func(m *nats.Msg) {
		p, err := strconv.Atoi(strings.TrimPrefix(m.Subject, n.wake))
		if err != nil || p < 0 || p >= n.cfg.Partitions {
			n.log.WithField("subject", m.Subject).Debug("cluster: wake for no partition; ignored")
			return
		}
		n.log.WithField("partition", p).Debug("cluster: wake")
		n.d.disp.Wake(p)
	})
	if err != nil {
		return fmt.Errorf("cluster: subscribe to wakes: %w", err)
	}
	if err := c.Start(octx); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	n.mu.Lock()
	n.sub = sub
	n.mu.Unlock()
	n.nc.Store(nc)
	n.coord.Store(c)
	// STATUS= follows the cluster's changes at once, not at the next tick.
	n.pokes.Add(1)
	go func() {
		defer n.pokes.Done()
		for {
			select {
			case <-c.Changed():
				n.d.board.poke()
			case <-n.stopped:
				return
			}
		}
	}()
	n.log.WithFields(logrus.Fields{"node": ccfg.Node, "partitions": ccfg.Partitions, "platforms": ccfg.Platforms}).Info("cluster: coordinator started")
	return nil
}

// announce is the dispatcher's Options.Announce: it tells the owner of
// partition p that work for p is stored. nats.Conn.Publish only queues the
// message (and fails at once while disconnected: no reconnect buffer), so
// it does not block the dispatcher.
func (n *clusterNode) announce(p int) {
	nc := n.nc.Load()
	if nc == nil {
		return
	}
	if err := nc.Publish(n.wake+strconv.Itoa(p), nil); err != nil {
		n.log.WithError(err).WithField("partition", p).Debug("cluster: wake not sent; the owner's refresh finds the work")
	}
}

// Start is the Worker's: this node now holds r's lease.
func (n *clusterNode) Start(r cluster.Resource) {
	switch r.Kind {
	case cluster.KindPartition:
		n.d.disp.StartPartition(r.Partition)
	case cluster.KindPlatform:
		n.startIntake(r.Platform)
	}
}

// Stop is the Worker's: r's lease ends (released, lost or about to
// expire); ctx ends at the fencing bound.
func (n *clusterNode) Stop(ctx context.Context, r cluster.Resource) {
	switch r.Kind {
	case cluster.KindPartition:
		n.d.disp.StopPartition(ctx, r.Partition)
	case cluster.KindPlatform:
		n.stopIntake(ctx, r.Platform)
	}
}

// startIntake builds a fresh instance of the leased platform name (an
// adapter starts once) and starts it with the dispatcher as its inbox.
func (n *clusterNode) startIntake(name string) {
	n.mu.Lock()
	n.lastUp[name] = time.Now()
	n.mu.Unlock()
	n.d.mu.Lock()
	cfg := n.d.cfg
	n.d.mu.Unlock()
	pc := cfg.Platforms[name]
	if pc == nil || !pc.IsEnabled() {
		n.log.WithField("platform", name).Warn("cluster: holding the lease of a platform no longer configured; not receiving")
		return
	}
	a, err := n.d.buildAdapter(cfg, name, pc)
	if err != nil {
		logging.Event(n.log, logging.MsgAdapterFatal).WithError(err).WithField("platform", name).Error("platform failed to start")
		n.d.board.report(name, pc.Type, adapter.Status{Phase: adapter.PhaseFatal, Err: err})
		return
	}
	p := &platform{name: name, conf: pc, adapter: a}
	err = n.d.startAdapter(p)
	// Kept even when it failed: stopIntake and close stop it either way.
	n.mu.Lock()
	n.intake[name] = p
	n.mu.Unlock()
	if err == nil {
		n.log.WithField("platform", name).Info("cluster: platform lease held: receiving")
	}
}

// stopIntake stops the intake of name within ctx (an adapter's Stop
// returns within 100 ms of its context ending, its connections already
// dropped).
func (n *clusterNode) stopIntake(ctx context.Context, name string) {
	n.mu.Lock()
	p := n.intake[name]
	delete(n.intake, name)
	delete(n.lastUp, name)
	n.mu.Unlock()
	if p == nil {
		// Its adapter could not be built: no longer failed here, since
		// another node receives for it.
		n.d.mu.Lock()
		pc := n.d.cfg.Platforms[name]
		n.d.mu.Unlock()
		if pc != nil {
			n.d.board.report(name, pc.Type, adapter.Status{Phase: adapter.PhaseStandby})
		}
		return
	}
	start := time.Now()
	err := p.adapter.Stop(ctx)
	p.cancel()
	entry := n.log.WithFields(logrus.Fields{"platform": name, "took": time.Since(start).Round(time.Millisecond)})
	if err != nil {
		entry.WithError(err).Warn("cluster: platform lease ended: intake stopped with an error")
	} else {
		entry.Info("cluster: platform lease ended: not receiving")
	}
	n.d.board.report(name, p.conf.Type, adapter.Status{Phase: adapter.PhaseStandby})
}

// checkIntakes declines the leased platforms this node holds, as of st,
// whose intake cannot run here (see intakeStuckAfter). The daemon calls
// it at each status tick (2 s).
func (n *clusterNode) checkIntakes(st cluster.Status, now time.Time) {
	c := n.coord.Load()
	if c == nil {
		return
	}
	states := n.d.board.snapshot()
	for _, name := range st.Platforms {
		if slices.ContainsFunc(st.Declined, func(d cluster.Declined) bool { return d.Platform == name }) {
			continue // declined at an earlier tick; its lease is being released
		}
		others := false
		for _, m := range st.Members {
			others = others || m.Node != st.Node && slices.Contains(m.Platforms, name)
		}
		n.mu.Lock()
		up, ok := n.lastUp[name]
		if ps := states[name]; ok && ps.Status.Phase == adapter.PhaseConnected {
			n.lastUp[name], n.declines[name] = now, 0
			n.mu.Unlock()
			continue
		}
		why := ""
		if ok {
			why = intakeTrouble(states[name].Status, now.Sub(up), others)
		}
		k := n.declines[name]
		if why != "" {
			n.declines[name] = k + 1
		}
		n.mu.Unlock()
		if why != "" {
			c.Decline(name, declineFor(k), why)
		}
	}
}

// declineFor is how long a platform is declined after k declines since
// its intake was last seen connected.
func declineFor(k int) time.Duration {
	return min(declineFirst<<min(k, 5), declineMax)
}

// intakeTrouble says why a held platform's intake in state st, not seen
// connected for down, should be handed over, or "" when it should not;
// others tells whether another member runs the platform.
func intakeTrouble(st adapter.Status, down time.Duration, others bool) string {
	switch {
	case st.Phase == adapter.PhaseFatal:
		if st.Err != nil {
			return "failed: " + st.Err.Error()
		}
		return "failed"
	case st.Phase != adapter.PhaseConnected && others && down >= intakeStuckAfter:
		why := fmt.Sprintf("not connected for %v (%s", down.Round(time.Second), st.Phase)
		if st.Err != nil {
			why += ": " + st.Err.Error()
		}
		return why + ")"
	}
	return ""
}

// close leaves the cluster within timeout: the coordinator releases every
// lease (stopping the partitions and intakes first), so other nodes take
// them at once. It returns the intakes still running, which only an
// abandoned release leaves, for the caller to stop with the rest.
func (n *clusterNode) close(timeout time.Duration) []*platform {
	if c := n.coord.Load(); c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := c.Close(ctx); err != nil {
			n.log.WithError(err).Warn("cluster: leaving the cluster: some leases were not released; they expire after cluster.lease_ttl")
		}
		cancel()
	}
	close(n.stopped)
	n.pokes.Wait()
	n.nc.Store(nil)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sub != nil {
		_ = n.sub.Unsubscribe()
	}
	var left []*platform
	for name, p := range n.intake {
		left = append(left, p)
		delete(n.intake, name)
	}
	return left
}

// Status is the coordinator's, or, until it started, this node alone and
// not a member.
func (n *clusterNode) Status() cluster.Status {
	if c := n.coord.Load(); c != nil {
		return c.Status()
	}
	st := cluster.Status{Node: n.cfg.NodeID, Holders: map[string]string{}}
	if nc := n.d.nats.conn(); nc != nil {
		st.NATS = nc.Status().String()
	}
	return st
}

// summary is the cluster's part of STATUS=, e.g. "cluster 3 nodes, 21
// partitions, platforms telegram-main"; member is false while this node is
// not a member of the cluster (it then runs no turn).
func (n *clusterNode) summary() (text string, member bool) {
	if n.coord.Load() == nil {
		if msg := n.startErr.Load(); msg != nil {
			return "cluster: not joined yet (" + *msg + "; retrying)", false
		}
		return "cluster: not joined yet (waiting for NATS)", false
	}
	st := n.Status()
	if !st.Member {
		return "cluster: joining", false
	}
	s := fmt.Sprintf("cluster %d nodes, %d partitions", len(st.Members), len(st.Partitions))
	if len(st.Platforms) > 0 {
		s += ", platforms " + strings.Join(st.Platforms, " ")
	}
	for _, d := range st.Declined {
		s += ", declined " + d.Platform + " until " + d.Until.Format(time.TimeOnly)
	}
	return s, true
}
