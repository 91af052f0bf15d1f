// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/store"
)

// Cluster mode. With Options.Partitions > 0 the dispatcher shares the
// conversations with other nodes on one store. Each conversation (session
// key) hashes to one of Options.Partitions partitions (cluster.PartitionOf),
// and this dispatcher runs the turns and delivers the replies of the
// partitions it owns: those given to StartPartition and not yet taken back
// by StopPartition. The lease that says which node owns a partition is the
// caller's (pkg/cluster); the dispatcher only obeys it.
//
//   - Intake stays open on every node. Deliver stores every message,
//     whatever its partition (the store is shared), and enqueues it only
//     when its partition is owned here. For another partition it calls
//     Options.Announce, and the owner, told through Wake, reads the
//     partition's pending work at once. A reply or a sent message stored
//     for another partition (a refusal, the send API) is announced the
//     same way.
//   - A refresh reads the store's pending messages and reply parts and
//     takes those of the partitions it was asked for that this dispatcher
//     has not in hand. It runs at StartPartition (which recovers what the
//     partition's previous owner left), after a Wake, and every sweep
//     interval for the owned partitions, which covers a lost wake. A
//     message or part finished here shortly before a refresh's read would
//     still look pending to it: ids finished in the last minute are
//     remembered and skipped (a store read is bounded at 10 s).
//   - StopPartition fences: no turn or delivery of the partition starts any
//     more, its turns are cancelled at once (a turn detaches from its
//     backend run, which the next owner resumes; its message stays
//     pending), a send in progress may end until ctx ends, then it is
//     cancelled too, and queued work is dropped from memory and left
//     pending in the store for the next owner. It returns when nothing of
//     the partition runs, or when ctx ends; the caller's lease arithmetic
//     bounds ctx. A turn that ends after that records nothing.
//
// The per-conversation state in memory (generations after /new, pending
// approvals) belongs to the owner; StartPartition reads the partition's
// generations again before any of its turns starts, since another node
// may have reset a conversation while it owned the partition. Paired users
// are shared: a sender not known as paired is looked up in the store again
// (at most every pairedStale) before being refused.

// recentTTL is how long an id finished here is remembered against a
// refresh that read it as pending before it finished: longer than a
// refresh's bounded store reads.
const recentTTL = time.Minute

// pairedStale is how old the paired-users cache may be when a sender not in
// it is refused, in cluster mode (another node may have paired them).
const pairedStale = 2 * time.Second

// partState is one owned partition.
type partState struct {
	p int
	// turns is cancelled when StopPartition begins: the partition's turns
	// and commands end. sends is cancelled when StopPartition returns: a
	// send in progress may finish until then.
	turns       context.Context
	cancelTurns context.CancelFunc
	sends       context.Context
	cancelSends context.CancelFunc
	// ready is false until the first refresh read the partition's state;
	// until then its messages are left to that refresh.
	ready bool
	// dirty asks the refresher to read the partition's pending work.
	dirty bool
	// stopping is set by StopPartition: nothing of the partition starts.
	stopping bool
	// commands counts the partition's command goroutines.
	commands int
}

// clustered reports whether this dispatcher shares its store's work.
func (d *Dispatcher) clustered() bool { return d.opts.Partitions > 0 }

// partitionOf is the partition of a session key.
func (d *Dispatcher) partitionOf(key string) int {
	return cluster.PartitionOf(key, d.opts.Partitions)
}

// ownedLocked returns the state of the session key's partition when this
// dispatcher may work on it now, or nil. Outside cluster mode it returns
// nil and every session may run: use mayRunLocked for that question.
func (d *Dispatcher) ownedLocked(key string) *partState {
	if !d.clustered() {
		return nil
	}
	ps := d.owned[d.partitionOf(key)]
	if ps == nil || ps.stopping {
		return nil
	}
	return ps
}

// mayRunLocked reports whether the session's turns and deliveries may
// start here.
func (d *Dispatcher) mayRunLocked(s *session) bool {
	if !d.clustered() {
		return true
	}
	ps := d.ownedLocked(s.key)
	return ps != nil && ps == s.part && ps.ready
}

// turnContextLocked is the parent of a session's turn contexts.
func (d *Dispatcher) turnContextLocked(s *session) context.Context {
	if s.part != nil {
		return s.part.turns
	}
	return d.ctx
}

// sendContext is the parent of a reply part's send contexts: it ends at
// the hard stop, or when the ownership it was queued under ends.
func (d *Dispatcher) sendContext(dl *delivery) context.Context {
	if dl.part != nil {
		return dl.part.sends
	}
	return d.ctx
}

// announce tells the owner of key's partition that work for it is stored.
func (d *Dispatcher) announce(key string) {
	if d.opts.Announce != nil {
		d.opts.Announce(d.partitionOf(key))
	}
}

// StartPartition makes this dispatcher the owner of partition p: it reads
// p's state and pending work (what the previous owner left) and runs it,
// and from then on runs p's turns. It returns at once; the reading runs in
// the background. It is for cluster mode (Options.Partitions > 0) only.
func (d *Dispatcher) StartPartition(p int) {
	if !d.clustered() || p < 0 || p >= d.opts.Partitions {
		d.log.WithField("partition", p).Error("dispatch: StartPartition outside cluster mode or out of range; ignored")
		return
	}
	d.mu.Lock()
	if d.owned[p] != nil {
		d.mu.Unlock()
		return
	}
	ps := &partState{p: p, dirty: true}
	ps.turns, ps.cancelTurns = context.WithCancel(d.ctx)
	ps.sends, ps.cancelSends = context.WithCancel(d.ctx)
	d.owned[p] = ps
	// Sessions of p left from an earlier ownership (a turn that outlived
	// its StopPartition) run under this one from now on.
	for _, s := range d.sessions {
		if s.part != nil && s.part.p == p {
			s.part = ps
		}
	}
	d.mu.Unlock()
	d.kickRefresh()
}

// StopPartition takes partition p from this dispatcher (see the cluster
// mode notes above). It returns when none of p's turns, commands and
// deliveries runs any more, or when ctx ends.
func (d *Dispatcher) StopPartition(ctx context.Context, p int) {
	d.mu.Lock()
	ps := d.owned[p]
	if ps == nil {
		d.mu.Unlock()
		return
	}
	ps.stopping = true
	ps.cancelTurns()
	d.ready = slices.DeleteFunc(d.ready, func(s *session) bool {
		if s.part == ps {
			s.inReady = false
			return true
		}
		return false
	})
	for _, s := range d.sessions {
		if s.part != ps {
			continue
		}
		if s.retryTimer != nil {
			s.retryTimer.Stop()
			s.retryTimer = nil
		}
		for _, it := range s.queue {
			delete(d.tracked, it.id)
		}
		d.queued -= len(s.queue)
		s.queue = nil
		// A delivery in progress keeps its part until its attempt ends;
		// the others wait in the store for the next owner.
		keep := 0
		if s.delivering && len(s.outq) > 0 {
			keep = 1
		}
		d.dropOutLocked(s, keep)
		if s.turn != nil && s.turn.endState == store.Pending {
			s.turn.fenced = true
		}
		d.gcLocked(s)
	}
	d.metrics.QueueDepth(d.queued)
	d.mu.Unlock()
	d.log.WithField("partition", p).Debug("partition stopping")

	var left int
	for {
		changed := d.changedCh()
		d.mu.Lock()
		left = d.partBusyLocked(ps)
		d.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
		}
		break
	}
	d.mu.Lock()
	ps.cancelSends()
	if d.owned[p] == ps {
		delete(d.owned, p)
	}
	for _, s := range d.sessions {
		if s.part == ps && !s.delivering {
			// A part whose attempt was cancelled: pending in the store.
			d.dropOutLocked(s, 0)
			d.gcLocked(s)
		}
	}
	d.mu.Unlock()
	if left > 0 {
		d.log.WithFields(logrus.Fields{"partition": p, "running": left}).
			Error("partition's work did not stop within the lease's stop bound; what is still running records nothing")
	}
}

// partBusyLocked counts what of partition ps still runs.
func (d *Dispatcher) partBusyLocked(ps *partState) int {
	n := ps.commands
	for _, s := range d.sessions {
		if s.part != ps {
			continue
		}
		if s.turn != nil {
			n++
		}
		if s.delivering {
			n++
		}
	}
	return n
}

// fenced reports whether the ownership ps of a partition ended (its
// StopPartition returned): what a turn or delivery started under it would
// record or send now belongs to the next owner, even when this node owns
// the partition again by then. A nil ps (outside cluster mode, or work
// that belongs to no partition's owner) is never fenced.
func (d *Dispatcher) fenced(ps *partState) bool {
	if ps == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fencedLocked(ps)
}

func (d *Dispatcher) fencedLocked(ps *partState) bool {
	return ps != nil && d.owned[ps.p] != ps
}

// dropOutLocked forgets the reply parts of s's queue after the first keep:
// they wait in the store for the partition's next owner.
func (d *Dispatcher) dropOutLocked(s *session, keep int) {
	for _, dl := range s.outq[keep:] {
		delete(d.outTracked, dl.rec.ID)
	}
	clear(s.outq[keep:])
	s.outq = s.outq[:keep]
}

// dropFencedLocked drops from the head of s's queue the reply parts queued
// under an ownership that ended: they wait in the store, and the partition
// is read again so that what is still pending is queued anew.
func (d *Dispatcher) dropFencedLocked(s *session) {
	dropped := false
	for len(s.outq) > 0 && d.fencedLocked(s.outq[0].part) {
		delete(d.outTracked, s.outq[0].rec.ID)
		s.outq = popFront(s.outq)
		dropped = true
	}
	if dropped && s.part != nil && d.owned[s.part.p] == s.part {
		s.part.dirty = true
		d.kickRefresh()
	}
}

// Wake tells the dispatcher that another node stored work for partition p.
func (d *Dispatcher) Wake(p int) {
	d.mu.Lock()
	ps := d.owned[p]
	if ps != nil && !ps.stopping {
		ps.dirty = true
	}
	d.mu.Unlock()
	if ps != nil {
		d.kickRefresh()
	}
}

// Owned returns the partitions this dispatcher owns, sorted.
func (d *Dispatcher) Owned() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := make([]int, 0, len(d.owned))
	for p, st := range d.owned {
		if !st.stopping {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

func (d *Dispatcher) kickRefresh() {
	select {
	case d.refreshKick <- struct{}{}:
	default:
	}
}

// refresher reads the pending work of dirty partitions, one refresh at a
// time: wakes that arrive meanwhile are served by the next.
func (d *Dispatcher) refresher() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.drainCh:
			return
		case <-d.refreshKick:
		}
		d.mu.Lock()
		parts := map[int]bool{}
		recovering := map[int]bool{}
		for p, ps := range d.owned {
			if ps.dirty && !ps.stopping {
				parts[p] = true
				if !ps.ready {
					recovering[p] = true
				}
				ps.dirty = false
			}
		}
		d.mu.Unlock()
		if len(parts) > 0 {
			if err := d.refresh(parts, recovering); err != nil && d.ctx.Err() == nil {
				d.log.WithError(err).Warn("cannot read the partitions' pending work; trying again")
				d.mu.Lock()
				for p := range parts {
					if ps := d.owned[p]; ps != nil {
						ps.dirty = true
					}
				}
				d.mu.Unlock()
				select {
				case <-time.After(time.Second):
				case <-d.ctx.Done():
					return
				}
				d.kickRefresh()
			}
		}
	}
}

// refresh takes the pending messages and reply parts of parts that this
// dispatcher does not have in hand. For the partitions in recovering (just
// started) it first reads their conversations' generations and then marks
// them ready.
func (d *Dispatcher) refresh(parts, recovering map[int]bool) error {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	var gens map[string]int64
	if len(recovering) > 0 {
		var err error
		if gens, err = d.store.Generations(ctx); err != nil {
			return fmt.Errorf("dispatch: read sessions: %w", err)
		}
	}
	pending, err := d.store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("dispatch: read pending messages: %w", err)
	}
	outbox, err := d.store.PendingOutbox(ctx)
	if err != nil {
		return fmt.Errorf("dispatch: read pending replies: %w", err)
	}
	var unknown map[int64]time.Time
	if len(outbox) > 0 {
		if unknown, err = d.store.StartedAttempts(ctx); err != nil {
			return fmt.Errorf("dispatch: read send attempts: %w", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return nil
	}
	current := func(key string) *partState {
		p := d.partitionOf(key)
		if !parts[p] {
			return nil
		}
		return d.ownedLocked(key)
	}
	if len(recovering) > 0 {
		for key := range d.gens {
			if recovering[d.partitionOf(key)] {
				delete(d.gens, key)
			}
		}
		for key, g := range gens {
			if recovering[d.partitionOf(key)] {
				d.gens[key] = g
			}
		}
		for p := range recovering {
			if ps := d.owned[p]; ps != nil && !ps.stopping {
				ps.ready = true
			}
		}
	}
	var msgs, replies int
	for _, r := range outbox {
		if current(r.SessionKey) == nil {
			continue
		}
		if d.outInHandLocked(r.ID) {
			continue
		}
		s := d.sessionLocked(r.SessionKey)
		d.addDeliveryLocked(s, &delivery{rec: r, attempts: r.Attempts, nextAt: r.NextAt, unknownSince: unknown[r.ID]})
		replies++
	}
	for _, r := range pending {
		if current(r.SessionKey) == nil {
			continue
		}
		if _, ok := d.tracked[r.ID]; ok || d.recentDone[r.ID] != (time.Time{}) {
			continue
		}
		d.enqueueLocked(&item{id: r.ID, key: r.SessionKey, msg: r.Msg})
		msgs++
	}
	for _, s := range d.sessions {
		if s.part != nil && parts[s.part.p] {
			d.scheduleLocked(s)
			d.kickDeliveryLocked(s)
		}
	}
	if msgs+replies > 0 {
		d.log.WithFields(logrus.Fields{"messages": msgs, "replies": replies}).Debug("took pending work of owned partitions")
	}
	return nil
}

// forgetRecentLocked drops the remembered finished ids older than
// recentTTL.
func (d *Dispatcher) forgetRecentLocked(now time.Time) {
	for id, at := range d.recentDone {
		if now.Sub(at) > recentTTL {
			delete(d.recentDone, id)
		}
	}
	for id, at := range d.recentOut {
		if now.Sub(at) > recentTTL {
			delete(d.recentOut, id)
		}
	}
	if len(d.recentDone) == 0 {
		d.recentDone = map[int64]time.Time{}
	}
	if len(d.recentOut) == 0 {
		d.recentOut = map[int64]time.Time{}
	}
}

// sweepPartitions is cluster mode's sweep: every owned partition is read
// again (a lost wake, a message whose Deliver gave up before its commit),
// and the paired users too.
func (d *Dispatcher) sweepPartitions() {
	d.mu.Lock()
	for _, ps := range d.owned {
		if !ps.stopping {
			ps.dirty = true
		}
	}
	d.forgetRecentLocked(time.Now())
	d.mu.Unlock()
	d.kickRefresh()
	d.reloadPaired()
}

// reloadPaired reads the paired users again.
func (d *Dispatcher) reloadPaired() {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	paired, err := d.loadPaired(ctx)
	if err != nil {
		d.log.WithError(err).Warn("cannot read the paired users again")
		return
	}
	d.mu.Lock()
	d.paired, d.pairedAt = paired, time.Now()
	d.mu.Unlock()
}

// startClustered is Start in cluster mode: it reads the shared state and
// opens intake; the pending work is read per partition, as each starts.
func (d *Dispatcher) startClustered(ctx context.Context) error {
	gens, err := d.store.Generations(ctx)
	if err != nil {
		return fmt.Errorf("dispatch: read sessions: %w", err)
	}
	paired, err := d.loadPaired(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.beginLocked(gens, paired); err != nil {
		return err
	}
	d.openLocked()
	d.wg.Add(1)
	go d.refresher()
	d.kickRefresh()
	return nil
}

// enqueueOwned enqueues a stored message in cluster mode: here if its
// partition is owned and ready and the message is not in hand already,
// else it is left to the partition's owner or to its first refresh.
func (d *Dispatcher) enqueueOwned(it *item) {
	d.mu.Lock()
	ps := d.ownedLocked(it.key)
	switch {
	case ps == nil:
		d.mu.Unlock()
		d.announce(it.key)
		return
	case !ps.ready:
		ps.dirty = true
		d.mu.Unlock()
		d.kickRefresh()
		return
	}
	if _, ok := d.tracked[it.id]; !ok && d.recentDone[it.id].IsZero() {
		d.enqueueLocked(it)
	}
	d.mu.Unlock()
}

// announceOrWake makes key's partition read its pending work: here if it
// is owned, else at its owner.
func (d *Dispatcher) announceOrWake(key string) {
	d.mu.Lock()
	ps := d.ownedLocked(key)
	if ps != nil {
		ps.dirty = true
	}
	d.mu.Unlock()
	if ps != nil {
		d.kickRefresh()
		return
	}
	d.announce(key)
}

// untrackLocked forgets a message this dispatcher had in hand.
func (d *Dispatcher) untrackLocked(id int64) {
	delete(d.tracked, id)
	if d.recentDone != nil {
		d.recentDone[id] = time.Now()
	}
}

// untrackOutLocked forgets a reply part that left the queue.
func (d *Dispatcher) untrackOutLocked(id int64) {
	if d.outTracked != nil {
		delete(d.outTracked, id)
		d.recentOut[id] = time.Now()
	}
}
