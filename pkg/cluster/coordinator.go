// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// Lease kinds, as Metrics and Resource see them.
const (
	KindPartition = "partition"
	KindPlatform  = "platform"
	KindMember    = "member"
)

// tick is how often the coordinator looks again at members and free keys
// when no event arrives: expiries send no event.
const tick = 250 * time.Millisecond

// nodeName is a node id that is a valid key: dot-separated tokens.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Resource is one thing a lease guards: a partition or a platform instance.
type Resource struct {
	Kind      string // KindPartition or KindPlatform
	Partition int    // for KindPartition
	Platform  string // for KindPlatform: the instance name, such as "telegram-main"
}

// Key is the resource's key in the leases bucket.
func (r Resource) Key() string {
	if r.Kind == KindPartition {
		return fmt.Sprintf("partition/%03d", r.Partition)
	}
	return "platform/" + r.Platform
}

func (r Resource) String() string { return r.Key() }

// Worker runs the work the leases guard. Start launches the resource's
// work and returns promptly. Stop returns once that work has stopped
// acting (no more turns run, no more platform calls made); ctx ends at the
// lease's StopTimeout, the bound Stop must meet for the fencing to hold.
// For one resource on one node, Start and Stop alternate, starting with
// Start, and never run at the same time.
type Worker interface {
	Start(r Resource)
	Stop(ctx context.Context, r Resource)
}

// Member is what a node announces in the members bucket.
type Member struct {
	Node      string    `json:"node"`
	Started   time.Time `json:"started"`
	Version   string    `json:"version"`
	HTTP      string    `json:"http,omitempty"`
	Platforms []string  `json:"platforms,omitempty"` // platform instances this node runs, less those it declines
}

// Config is one node's cluster configuration.
type Config struct {
	Node       string   // node id, unique in the cluster: the member key
	Version    string   // announced
	HTTP       string   // announced HTTP address (admin API)
	Partitions int      // default DefaultPartitions; the same on every node
	Platforms  []string // platform instances this node runs when it holds their lease

	Lease  LeaseConfig // partition and platform leases; TTL is the leases bucket's
	Member LeaseConfig // membership; TTL is the members bucket's

	// Grace is how long a platform's key stays free before a node other
	// than its preferred owner takes it (default Lease.TTL).
	Grace time.Duration
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	c.Lease = c.Lease.withDefaults()
	c.Member = c.Member.withDefaults()
	if c.Grace <= 0 {
		c.Grace = c.Lease.TTL
	}
	c.Platforms = slices.Sorted(slices.Values(c.Platforms))
	c.Platforms = slices.Compact(c.Platforms)
	return c
}

// opTimeout bounds one acquire or delete.
func (c Config) opTimeout() time.Duration { return max(c.Lease.Renew, time.Second) }

// retryMax caps the backoff between acquire attempts of a wanted key.
func (c Config) retryMax() time.Duration { return min(c.Lease.Renew, 500*time.Millisecond) }

// Buckets are the two key-value buckets of a cluster.
type Buckets struct {
	Leases  jetstream.KeyValue // partition and platform leases, TTL Config.Lease.TTL
	Members jetstream.KeyValue // membership, TTL Config.Member.TTL
}

// OpenBuckets creates or opens the buckets <prefix>_leases and
// <prefix>_members with the TTLs of cfg and the given replicas (replicas
// apply when a bucket is created). The prefix is the one the JetStream
// store uses, so several herald clusters can share one NATS; default
// "herald".
func OpenBuckets(ctx context.Context, js jetstream.JetStream, prefix string, cfg Config, replicas int) (Buckets, error) {
	cfg = cfg.withDefaults()
	if prefix == "" {
		prefix = "herald"
	}
	if !bucketPrefix.MatchString(prefix) {
		return Buckets{}, fmt.Errorf("cluster: prefix %q: only letters, digits, '-' and '_'", prefix)
	}
	leases, err := LeaseBucket(ctx, js, prefix+"_leases", cfg.Lease.TTL, replicas)
	if err != nil {
		return Buckets{}, err
	}
	members, err := LeaseBucket(ctx, js, prefix+"_members", cfg.Member.TTL, replicas)
	if err != nil {
		return Buckets{}, err
	}
	return Buckets{Leases: leases, Members: members}, nil
}

var bucketPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Status is a snapshot of one node's view of the cluster.
type Status struct {
	Node       string
	Member     bool              // this node holds its membership
	Members    []Member          // live members, sorted by node, this node included while it is a member
	Partitions []int             // partitions this node holds, sorted
	Platforms  []string          // platforms this node holds, sorted
	Holders    map[string]string // lease key -> holding node, as this node sees the bucket
	Declined   []Declined        // platforms this node declines for now (Decline), sorted
	// MemberChanges counts changes of the member list since Start: a
	// number that keeps growing in a steady cluster means flapping.
	MemberChanges uint64
	LastError     string
	LastErrorAt   time.Time
	NATS          string // the NATS connection's state
}

// Declined is a platform this node gave up for a while (Decline).
type Declined struct {
	Platform string
	Until    time.Time
	Why      string
}

// Coordinator holds, for one node, exactly the partition leases the node
// wins by rendezvous over the live members, and the platform leases it
// prefers or finds free; see the package documentation for the rules.
type Coordinator struct {
	cfg     Config
	js      jetstream.JetStream
	b       Buckets
	work    Worker
	metrics Metrics
	log     *logrus.Entry

	member  *Lease
	self    Member
	joined  atomic.Bool
	members *view
	leases  *view
	slots   []*slot
	byKey   map[string]*slot
	kick    chan struct{}
	joinKey chan struct{}

	mu            sync.Mutex
	live          []Member // last computed, sorted
	memberChanges uint64
	lastErr       string
	lastErrAt     time.Time
	changed       chan struct{}
	fallbackSig   map[string]string // platform key -> member set it was taken under as a fallback
	declined      map[string]Declined
	badMember     map[string]bool // member keys already warned about; reconcileLoop only

	cancel   context.CancelFunc
	wg       sync.WaitGroup // join, reconcile and slot goroutines
	watchers sync.WaitGroup // the two bucket watchers
	started  atomic.Bool
	closed   atomic.Bool
}

// NewCoordinator prepares a coordinator; Start runs it.
func NewCoordinator(cfg Config, js jetstream.JetStream, b Buckets, w Worker, m Metrics, log *logrus.Entry) (*Coordinator, error) {
	cfg = cfg.withDefaults()
	if !nodeName.MatchString(cfg.Node) || len(cfg.Node) > 64 {
		return nil, fmt.Errorf("cluster: node id %q must match %s, at most 64 characters", cfg.Node, nodeName)
	}
	for _, p := range cfg.Platforms {
		if !instanceName.MatchString(p) {
			return nil, fmt.Errorf("cluster: platform %q must match %s", p, instanceName)
		}
	}
	c := &Coordinator{cfg: cfg, js: js, b: b, work: w, metrics: m, log: log.WithField("node", cfg.Node),
		byKey: map[string]*slot{}, kick: make(chan struct{}, 1), joinKey: make(chan struct{}, 1),
		changed: make(chan struct{}), fallbackSig: map[string]string{}, badMember: map[string]bool{}, declined: map[string]Declined{}}
	c.self = Member{Node: cfg.Node, Started: time.Now().UTC().Truncate(time.Second), Version: cfg.Version, HTTP: cfg.HTTP, Platforms: cfg.Platforms}
	value, err := json.Marshal(c.self)
	if err != nil {
		return nil, fmt.Errorf("cluster: member value: %w", err)
	}
	c.member, err = newLease(b.Members, KindMember, cfg.Node, cfg.Node, value, cfg.Member, c.countedOut, m, c.log)
	if err != nil {
		return nil, err
	}
	var rs []Resource
	for p := 0; p < cfg.Partitions; p++ {
		rs = append(rs, Resource{Kind: KindPartition, Partition: p})
	}
	for _, p := range cfg.Platforms {
		rs = append(rs, Resource{Kind: KindPlatform, Platform: p})
	}
	for _, r := range rs {
		s := &slot{c: c, res: r, wake: make(chan struct{}, 1)}
		if s.lease, err = NewLease(b.Leases, r.Kind, r.Key(), cfg.Node, cfg.Lease, s.stopWork, m, c.log); err != nil {
			return nil, err
		}
		c.slots = append(c.slots, s)
		c.byKey[r.Key()] = s
	}
	// A watcher silent for two renewals and a second has died: this node's
	// own renewals would have shown; it is restarted well before a member
	// or a key unseen for one TTL counts as gone.
	c.members = newView(b.Members, cfg.Member.TTL, 2*cfg.Member.Renew+time.Second, c.log, func(string, bool) { signal(c.kick) })
	c.leases = newView(b.Leases, cfg.Lease.TTL, 2*cfg.Lease.Renew+time.Second, c.log, c.leaseChanged)
	return c, nil
}

// bucketStatus reads a bucket's status, each attempt bounded by a second
// and tried again until ctx ends: while its stream elects a leader (just
// created, or a NATS server gone) a request can go unanswered, and the
// next one finds the new leader.
func bucketStatus(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyValueStatus, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := kv.Status(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var instanceName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Start checks the buckets' TTLs against the configuration and starts the
// coordinator's goroutines; Close stops them.
func (c *Coordinator) Start(ctx context.Context) error {
	if c.closed.Load() || !c.started.CompareAndSwap(false, true) {
		return errors.New("cluster: coordinator already started")
	}
	for _, b := range []struct {
		kv  jetstream.KeyValue
		ttl time.Duration
	}{{c.b.Leases, c.cfg.Lease.TTL}, {c.b.Members, c.cfg.Member.TTL}} {
		st, err := bucketStatus(ctx, b.kv)
		if err != nil {
			c.started.Store(false)
			return fmt.Errorf("cluster: bucket status: %w", err)
		}
		if st.TTL() != b.ttl {
			c.started.Store(false)
			return fmt.Errorf("cluster: bucket %s has ttl %v, the configuration says %v", st.Bucket(), st.TTL(), b.ttl)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.watchers.Add(2)
	go func() { defer c.watchers.Done(); c.members.run(rctx) }()
	go func() { defer c.watchers.Done(); c.leases.run(rctx) }()
	c.wg.Add(2 + len(c.slots))
	go func() { defer c.wg.Done(); c.joinLoop(rctx) }()
	go func() { defer c.wg.Done(); c.reconcileLoop(rctx) }()
	for _, s := range c.slots {
		go func() { defer c.wg.Done(); s.run(rctx) }()
	}
	return nil
}

// Close leaves the cluster gracefully: it stops acquiring, deletes this
// node's member key so the others rebalance at once, then stops the work
// of every lease it holds and deletes the keys, so the new owners start
// without waiting for the TTL. Each step is bounded; a key that cannot be
// deleted expires after the TTL. It waits for the bucket watchers to stop
// until ctx ends.
func (c *Coordinator) Close(ctx context.Context) error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var errs []error
	if err := c.release(ctx, c.member); err != nil {
		errs = append(errs, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range c.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.release(ctx, s.lease); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	c.live = nil
	c.mu.Unlock()
	c.notify()
	// A watcher's Stop deletes its consumer with one request, which on a
	// connection cut off takes the client's request timeout; wait for it
	// only as long as ctx allows.
	stopped := make(chan struct{})
	go func() { c.watchers.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		c.log.Warn("cluster: close: bucket watchers still stopping; they end with the NATS request timeout")
	}
	return errors.Join(errs...)
}

// release releases l, bounded by its stop and one delete.
func (c *Coordinator) release(ctx context.Context, l *Lease) error {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.StopTimeout+c.cfg.opTimeout())
	defer cancel()
	return l.Release(rctx)
}

// Changed returns a channel that is closed at the next change of the
// members, of this node's membership or of the leases it holds.
func (c *Coordinator) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Coordinator) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Members returns the live members, sorted by node.
func (c *Coordinator) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.live)
}

// Status returns a snapshot for herald status and doctor.
func (c *Coordinator) Status() Status {
	st := Status{Node: c.cfg.Node, Member: c.joined.Load(), Members: c.Members(), Holders: map[string]string{}}
	for _, s := range c.slots {
		if !s.running.Load() {
			continue
		}
		if s.res.Kind == KindPartition {
			st.Partitions = append(st.Partitions, s.res.Partition)
		} else {
			st.Platforms = append(st.Platforms, s.res.Platform)
		}
	}
	for k, v := range c.leases.live(time.Now()) {
		st.Holders[k] = string(v)
	}
	c.mu.Lock()
	st.LastError, st.LastErrorAt, st.MemberChanges = c.lastErr, c.lastErrAt, c.memberChanges
	for _, d := range c.declined {
		st.Declined = append(st.Declined, d)
	}
	c.mu.Unlock()
	slices.SortFunc(st.Declined, func(a, b Declined) int { return strings.Compare(a.Platform, b.Platform) })
	if nc := c.js.Conn(); nc != nil {
		st.NATS = nc.Status().String()
	}
	return st
}

func (c *Coordinator) setErr(err error) {
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err.Error(), time.Now()
	c.mu.Unlock()
}

// countedOut is the membership lease's stop callback: a node that cannot
// renew its membership counts itself out, so it wants no lease, and tries
// to join again.
func (c *Coordinator) countedOut(context.Context) {
	if c.joined.Swap(false) && !c.closed.Load() {
		c.log.Warn("cluster: membership lost; releasing every lease and joining again")
	}
	signal(c.kick)
	signal(c.joinKey)
}

// joinLoop holds this node's member key, retrying with jittered backoff.
func (c *Coordinator) joinLoop(ctx context.Context) {
	var bo backoff
	bo.min, bo.max = 100*time.Millisecond, c.cfg.Member.Renew
	waiting := false
	for ctx.Err() == nil {
		var retry <-chan time.Time
		if !c.member.Held() {
			actx, cancel := context.WithTimeout(ctx, c.cfg.opTimeout())
			ok, err := c.member.TryAcquire(actx)
			cancel()
			switch {
			case ok:
				bo.reset()
				waiting = false
				c.joined.Store(true)
				c.log.Info("cluster: joined")
				signal(c.kick)
				continue
			case err != nil && ctx.Err() == nil:
				c.setErr(err)
			case err == nil && !waiting:
				waiting = true
				c.log.Warn("cluster: member key held (another process with this node id, or an earlier run that has not expired); waiting")
			}
			retry = time.After(bo.next())
		}
		select {
		case <-ctx.Done():
		case <-c.joinKey:
		case <-retry:
		}
	}
}

// leaseChanged wakes the slot of a deleted key at once: a released key is
// free now. Renewals change no want; the next tick sees a platform taken.
func (c *Coordinator) leaseChanged(key string, deleted bool) {
	if key != "" && !deleted {
		return
	}
	if s := c.byKey[key]; s != nil {
		signal(s.wake)
	}
	signal(c.kick)
}

// reconcileLoop recomputes what this node wants on every event and tick.
func (c *Coordinator) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		c.reconcile(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
	}
}

// reconcile sets each slot's want from the live members.
func (c *Coordinator) reconcile(now time.Time) {
	c.mu.Lock()
	for name, d := range c.declined {
		if !now.Before(d.Until) {
			delete(c.declined, name)
			c.announceLocked()
			c.log.WithField("platform", name).Info("cluster: platform declined until " + d.Until.Format(time.TimeOnly) + ": runs here again")
		}
	}
	self := c.self
	c.mu.Unlock()
	// Until the members are known, this node would think itself alone and
	// want every lease.
	joined := c.joined.Load() && c.members.synced()
	var live []Member
	for k, v := range c.members.live(now) {
		if k == c.cfg.Node {
			continue
		}
		var m Member
		if err := json.Unmarshal(v, &m); err != nil || m.Node != k {
			if !c.badMember[k] {
				c.badMember[k] = true
				c.log.WithField("member", k).Warn("cluster: member value is not a member announcement; ignored")
			}
			continue
		}
		live = append(live, m)
	}
	if joined {
		live = append(live, self)
	}
	slices.SortFunc(live, func(a, b Member) int { return strings.Compare(a.Node, b.Node) })
	names := make([]string, len(live))
	for i, m := range live {
		names[i] = m.Node
	}
	sig := strings.Join(names, ",")

	c.mu.Lock()
	membersChanged := !slices.EqualFunc(live, c.live, func(a, b Member) bool { return a.Node == b.Node })
	c.live = live
	if membersChanged {
		c.memberChanges++
	}
	c.mu.Unlock()
	if membersChanged {
		c.log.WithField("members", names).Info("cluster: members changed")
		c.notify()
	}

	for _, s := range c.slots {
		want := false
		if joined {
			if s.res.Kind == KindPartition {
				want = Owner(s.res.Partition, names) == c.cfg.Node
			} else {
				want = c.wantPlatform(s, live, sig, now)
			}
		}
		if s.want.Swap(want) != want {
			signal(s.wake)
		}
	}
}

// wantPlatform: the preferred owner of a platform (rendezvous over the
// members that run it) wants it; any node wants it once its key has been
// free for Grace; a node that took it that way keeps it while the member
// set is the one it took it under.
func (c *Coordinator) wantPlatform(s *slot, live []Member, sig string, now time.Time) bool {
	var able []string
	for _, m := range live {
		if slices.Contains(m.Platforms, s.res.Platform) {
			able = append(able, m.Node)
		}
	}
	key := s.res.Key()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.declined[s.res.Platform]; ok {
		delete(c.fallbackSig, key)
		return false
	}
	if OwnerOf(s.res.Platform, able) == c.cfg.Node {
		delete(c.fallbackSig, key)
		return true
	}
	if c.fallbackSig[key] == sig {
		// Taken as a fallback: kept while the members stay the same. The
		// bucket shows this node as holder as soon as its Create landed,
		// before the work has started.
		if holder, _ := c.leases.value(key, now); s.running.Load() || holder == c.cfg.Node {
			return true
		}
	}
	if since, free := c.leases.freeSince(key, now); free && now.Sub(since) >= c.cfg.Grace {
		c.fallbackSig[key] = sig
		return true
	}
	return false
}

// Decline gives up this node's claim on platform for d, because the
// platform cannot run here (its intake failed to start, or has not
// connected for long); why is shown in Status. The node stops wanting the
// lease (a held one is released, its work stopped) and announces itself
// without the platform at its next membership renewal, so the preferred
// owner among the other members that run it takes it, and no node falls
// back to this one meanwhile. Once d has passed the node runs the platform
// again as before, and takes the lease back if it is the preferred owner.
// A platform this node does not run is ignored; declining one again sets
// a new end.
func (c *Coordinator) Decline(platform string, d time.Duration, why string) {
	if !slices.Contains(c.cfg.Platforms, platform) {
		return
	}
	until := time.Now().Add(d)
	c.mu.Lock()
	c.declined[platform] = Declined{Platform: platform, Until: until, Why: why}
	c.announceLocked()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"platform": platform, "until": until.Format(time.TimeOnly), "reason": why}).
		Warn("cluster: platform declined: handing its lease over")
	signal(c.kick)
	c.notify()
}

// announceLocked sets this node's announcement to the platforms it runs
// less those it declines; the member lease writes it at its next renewal.
func (c *Coordinator) announceLocked() {
	var ps []string
	for _, p := range c.cfg.Platforms {
		if _, ok := c.declined[p]; !ok {
			ps = append(ps, p)
		}
	}
	c.self.Platforms = ps
	value, err := json.Marshal(c.self)
	if err != nil {
		c.log.WithError(err).Error("cluster: member value")
		return
	}
	c.member.SetValue(value)
}

// slot is one resource's lease on this node and the goroutine that
// acquires or releases it as the coordinator wants.
type slot struct {
	c     *Coordinator
	res   Resource
	lease *Lease
	wake  chan struct{}
	want  atomic.Bool

	mu      sync.Mutex // orders Start and Stop
	running atomic.Bool
}

func (s *slot) run(ctx context.Context) {
	var bo backoff
	bo.min, bo.max = 50*time.Millisecond, s.c.cfg.retryMax()
	for ctx.Err() == nil {
		var retry <-chan time.Time
		want, held := s.want.Load(), s.lease.Held()
		switch {
		case want && !held:
			actx, cancel := context.WithTimeout(ctx, s.c.cfg.opTimeout())
			ok, err := s.lease.TryAcquire(actx)
			cancel()
			if ok {
				bo.reset()
				s.begin()
				continue
			}
			if err != nil && ctx.Err() == nil {
				s.c.setErr(err)
			}
			retry = time.After(bo.next())
		case !want && held:
			if err := s.c.release(ctx, s.lease); err != nil && ctx.Err() == nil {
				s.c.setErr(err)
			}
			continue
		default:
			bo.reset()
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-retry:
		}
	}
}

// begin starts the work once the lease is taken, unless it was lost in
// between; a loss from here on waits for Start before it stops the work.
func (s *slot) begin() {
	s.mu.Lock()
	if s.lease.Held() && !s.running.Load() {
		s.c.work.Start(s.res)
		s.running.Store(true)
		s.c.log.WithField("lease", s.res.Key()).Info("cluster: started")
	}
	s.mu.Unlock()
	s.c.notify()
}

// stopWork is the lease's stop callback: after a loss, or on release.
func (s *slot) stopWork(ctx context.Context) {
	s.mu.Lock()
	if s.running.Load() {
		s.c.work.Stop(ctx, s.res)
		s.running.Store(false)
		s.c.log.WithField("lease", s.res.Key()).Info("cluster: stopped")
	}
	s.mu.Unlock()
	signal(s.wake)
	signal(s.c.kick)
	s.c.notify()
}

// signal wakes the receiver of a 1-buffered channel without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
