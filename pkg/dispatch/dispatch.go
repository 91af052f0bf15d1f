// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
)

// Agent is the part of agent.Agent the dispatcher uses.
type Agent interface {
	Complete(ctx context.Context, req agent.Request, ev agent.Events) (string, error)
	KeepsHistory() bool
}

// Policy is a platform's authorization and session policy.
type Policy struct {
	AllowAll             bool
	AllowedUsers         []string
	Unauthorized         string // "reply" or "ignore"
	UnauthorizedText     string
	GroupSessionsPerUser bool
	// DMPolicy is allowlist, pairing or open (AllowAll): in pairing mode
	// an unknown user's direct message gets a pairing code.
	DMPolicy string
}

// Platform is a built adapter with its policy.
type Platform struct {
	Adapter adapter.Adapter
	Policy  Policy
	// Idempotent says the platform deduplicates on Outbound.IdempotencyKey,
	// so a delivery whose outcome is unknown may be retried.
	Idempotent bool
	// HomeChat is where a sent message without a chat goes.
	HomeChat string
}

// Options tune the dispatcher; zero values take the documented defaults of
// the corresponding configuration keys.
type Options struct {
	BusyPolicy         string // queue | interrupt
	MaxConcurrentTurns int
	HistoryMessages    int
	SystemPrompt       string
	StreamEdits        bool
	StreamEditInterval time.Duration
	// MaxReplyParts caps the parts one reply is split into; past it the
	// reply is cut with CutMarker. Default 20.
	MaxReplyParts   int
	DeliveryTimeout time.Duration
	MaxAttempts     int
	InitialBackoff  time.Duration
	MaxBackoff      time.Duration
	// MaxRetryAfter caps the pause a platform may ask for before the next
	// delivery attempt (Retry-After and the like); a larger one is logged
	// and clamped. Default 1h.
	MaxRetryAfter time.Duration
	// TurnRetries is how often a turn is run again after the agent was
	// unavailable, before the user is told. Default 3.
	TurnRetries int
	// TurnRetryBackoff is the first pause before such a re-run, doubled each
	// time. Default 5s.
	TurnRetryBackoff time.Duration
	// FinishRetryBackoff is the first pause before writing the end of a
	// turn again after the store failed to (a full disk), doubled each
	// time up to 30s. The reply is kept in memory meanwhile; the agent is
	// not asked again. Default 1s.
	FinishRetryBackoff time.Duration
	// Retention is how long finished messages are kept (the dedupe window).
	Retention time.Duration
	// ApprovalTimeout is how long a run's approval request waits for the
	// user's answer before herald denies it. Default 5m.
	ApprovalTimeout time.Duration
	// RerunInterrupted runs a turn whose backend run was interrupted (the
	// backend restarted while it executed) once more under a new
	// idempotency key, instead of telling the user (config
	// agent.rerun_interrupted).
	RerunInterrupted bool
	// HistoryRetention is how long session history is kept (besides, a
	// session keeps only its newest HistoryMessages entries, the most a
	// turn sends). Default 720h.
	HistoryRetention time.Duration
	// RefusalInterval limits refusals to one per sender per interval.
	// Default 10m.
	RefusalInterval time.Duration
	// Limits are the per-user budgets (limits.per_user).
	Limits UserLimits
	// Media passes attachments to the agent; nil names them in a note.
	Media *Media
	// Partitions > 0 is cluster mode: the number of partitions
	// conversations hash to (the same on every node). The dispatcher then
	// runs only the partitions given to StartPartition (see partition.go).
	// 0: it owns every conversation.
	Partitions int
	// Announce is called in cluster mode, without locks, after this node
	// stored work (a message, a reply, a sent message) for partition p
	// that it does not own, so that p's owner reads it at once (its Wake).
	// It must not block.
	Announce func(p int)
	// ButtonKey signs the data of approval buttons (see buttons.go). It
	// must be the same in every instance sharing the store, so a button
	// pressed after a restart is still valid. Empty: no buttons, only
	// /approve and /deny. In cluster mode SetButtonKey replaces it with
	// the key every node shares.
	ButtonKey []byte
}

func (o *Options) defaults() {
	if o.BusyPolicy == "" {
		o.BusyPolicy = "queue"
	}
	if o.MaxConcurrentTurns <= 0 {
		o.MaxConcurrentTurns = 64
	}
	if o.StreamEditInterval <= 0 {
		o.StreamEditInterval = time.Second
	}
	if o.MaxReplyParts <= 0 {
		o.MaxReplyParts = 20
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 15 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = time.Hour
	}
	if o.TurnRetries < 0 {
		o.TurnRetries = 0
	} else if o.TurnRetries == 0 {
		o.TurnRetries = 3
	}
	if o.TurnRetryBackoff <= 0 {
		o.TurnRetryBackoff = 5 * time.Second
	}
	if o.FinishRetryBackoff <= 0 {
		o.FinishRetryBackoff = time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 72 * time.Hour
	}
	if o.HistoryRetention <= 0 {
		o.HistoryRetention = 30 * 24 * time.Hour
	}
	if o.RefusalInterval <= 0 {
		o.RefusalInterval = 10 * time.Minute
	}
	if o.ApprovalTimeout <= 0 {
		o.ApprovalTimeout = 5 * time.Minute
	}
}

// Dispatcher is the core. Create it with New, then Start it before any
// adapter starts delivering.
type Dispatcher struct {
	opts Options
	// buttonKey is the key signing approval buttons (Options.ButtonKey,
	// or the one given to SetButtonKey).
	buttonKey atomic.Pointer[[]byte]
	store     Store
	log       *logrus.Entry
	metrics   *metrics.Metrics

	// ctx is cancelled at the hard stop (Drain's deadline or Close); every
	// turn and delivery runs below it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	activity chan struct{}
	probe    chan chan struct{}

	mu          sync.Mutex
	agent       Agent
	platforms   map[string]*platform
	sessions    map[string]*session
	ready       []*session
	running     int
	turns       uint64 // turns started since Start (Stats.Turns)
	deliverers  int
	commands    int // command goroutines still writing their answer
	sending     int
	unrecorded  int
	queued      int
	intakeOpen  bool
	draining    bool
	drainCh     chan struct{}
	refusals    map[string]time.Time
	started     bool
	missingWarn map[string]bool
	// housekept is set once Start has started the housekeeping loop;
	// Check reads it without the lock, which it must not wait for.
	housekept atomic.Bool
	// tracked holds the ids of stored messages this dispatcher has in a
	// queue, a running turn or a command being answered. A pending message
	// outside it is an orphan (stored by a Deliver whose caller gave up
	// waiting for the commit) and is picked up by Deliver on redelivery or by
	// the housekeeping sweep.
	tracked map[int64]struct{}
	// orphans are untracked pending ids seen by the last sweep.
	orphans, nextOrphans map[int64]bool
	// gens holds the generation of every session ever reset by /new (the
	// others are at 0), so a turn never reads the store under the lock.
	gens map[string]int64
	// paired holds the users approved by pairing, by platform.
	paired map[string]map[string]bool
	// approvals are the runs waiting for the user's /approve or /deny, by
	// session (see agentrun.go); approvalsClosed is set by Close.
	approvals       map[string]*pendingApproval
	approvalsClosed bool
	// answering holds the sessions whose approval is being answered, so
	// two answers at once (a button pressed twice) reach the agent once.
	answering map[string]bool

	// mediaPrune serialises media prunes; mediaPrunedAt is when a full
	// store last triggered one out of turn (see pruneMediaNow).
	mediaPrune    sync.Mutex
	mediaPrunedAt time.Time

	// changed is closed and replaced whenever activity decreases (see
	// signal): StopPartition waits on it. signal runs with and without mu
	// held, so changed has a lock of its own.
	changedMu sync.Mutex
	changed   chan struct{}
	// Cluster mode (partition.go): the partitions owned, the refresher's
	// wake-up, the reply parts in hand, the ids finished lately and when
	// the paired users were read.
	owned       map[int]*partState
	refreshKick chan struct{}
	outTracked  map[int64]struct{}
	recentDone  map[int64]time.Time
	recentOut   map[int64]time.Time
	pairedAt    time.Time
}

type platform struct {
	Platform
	allowed   map[string]bool
	limit     int
	editor    adapter.Editor
	recoverer adapter.Recoverer
}

type session struct {
	key        string
	queue      []*item
	turn       *turn
	inReady    bool
	retryTimer *time.Timer
	outq       []*delivery
	delivering bool
	// part is the owned partition the session belongs to, in cluster mode.
	part *partState
}

type item struct {
	id  int64
	key string
	msg message.Inbound
	// part is the ownership of the partition it was enqueued under, in
	// cluster mode (nil for a refusal, recorded wherever it arrived).
	part      *partState
	attempts  int
	notBefore time.Time
	// userText is what the agent was sent for msg (its text and media
	// notes, never data: URLs), kept as history.
	userText string
	// notices are one-line messages for the user about media that did not
	// reach the agent, sent before the reply.
	notices []string
	// fresh: stored by this Deliver (not a redelivery, not found pending
	// at start or by the sweep) and no turn of it has started, so no
	// backend run and no re-run attempt can be recorded for it: its first
	// turn need not read them.
	fresh bool
}

type turn struct {
	item *item
	// cancel ends the turn's context: with agent.ErrStopRequested when the
	// user stops it (the agent then stops a backend run), with nil
	// otherwise (shutdown: the agent detaches from a backend run).
	cancel  context.CancelCauseFunc
	started time.Time
	// endState is set when the turn is cancelled on purpose: Dropped by
	// /stop or /new, Interrupted by a newer message.
	endState store.State
	// fenced: its partition was taken from this node (cluster mode); the
	// turn ends and leaves its message pending for the next owner.
	fenced bool
}

type delivery struct {
	rec store.OutboxRecord
	// part is the ownership of the partition it was queued under, in
	// cluster mode: once that ownership ended, the part is the next
	// owner's, even if this node owns the partition again by then.
	part     *partState
	attempts int
	nextAt   time.Time
	// unknownSince is when the first send of this reply whose outcome is
	// unknown began (zero if none): on a platform without idempotency
	// keys it is sent again only through adapter.Recoverer.
	unknownSince time.Time
}

// New creates a dispatcher. platforms may be replaced later with
// SetPlatforms (reload).
func New(st Store, ag Agent, platforms map[string]Platform, opts Options, log *logrus.Entry, m *metrics.Metrics) *Dispatcher {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		opts:        opts,
		store:       st,
		log:         log,
		metrics:     m,
		ctx:         ctx,
		cancel:      cancel,
		activity:    make(chan struct{}, 1),
		probe:       make(chan chan struct{}),
		agent:       ag,
		sessions:    map[string]*session{},
		drainCh:     make(chan struct{}),
		refusals:    map[string]time.Time{},
		missingWarn: map[string]bool{},
		tracked:     map[int64]struct{}{},
		orphans:     map[int64]bool{},
		nextOrphans: map[int64]bool{},
		changed:     make(chan struct{}),
	}
	if opts.Partitions > 0 {
		d.owned = map[int]*partState{}
		d.refreshKick = make(chan struct{}, 1)
		d.outTracked = map[int64]struct{}{}
		d.recentDone = map[int64]time.Time{}
		d.recentOut = map[int64]time.Time{}
	}
	d.buttonKey.Store(&opts.ButtonKey)
	d.setPlatformsLocked(platforms)
	return d
}

// SetPlatforms replaces the platform set (after a reload). Replies waiting
// for a platform that came back are delivered.
func (d *Dispatcher) SetPlatforms(platforms map[string]Platform) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setPlatformsLocked(platforms)
	d.missingWarn = map[string]bool{}
	for _, s := range d.sessions {
		d.kickDeliveryLocked(s)
	}
}

// SetAgent replaces the agent (after a reload); running turns keep theirs.
func (d *Dispatcher) SetAgent(ag Agent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.agent = ag
}

func (d *Dispatcher) setPlatformsLocked(ps map[string]Platform) {
	d.platforms = make(map[string]*platform, len(ps))
	for name, p := range ps {
		pp := &platform{Platform: p, allowed: map[string]bool{}, limit: adapter.DefaultMaxMessageLen}
		for _, u := range p.Policy.AllowedUsers {
			pp.allowed[u] = true
		}
		if l, ok := p.Adapter.(adapter.Limiter); ok && l.MaxMessageLen() > 0 {
			pp.limit = l.MaxMessageLen()
		}
		if e, ok := p.Adapter.(adapter.Editor); ok {
			pp.editor = e
		}
		if r, ok := p.Adapter.(adapter.Recoverer); ok {
			pp.recoverer = r
		}
		d.platforms[name] = pp
	}
}

// Start re-dispatches what a previous instance left pending (messages whose
// turn did not finish, replies not delivered) and opens intake. It returns
// the number of messages and replies recovered.
func (d *Dispatcher) Start(ctx context.Context) (msgs, replies int, err error) {
	if d.clustered() {
		return 0, 0, d.startClustered(ctx)
	}
	pending, err := d.store.Pending(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: recover messages: %w", err)
	}
	outbox, err := d.store.PendingOutbox(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: recover replies: %w", err)
	}
	unknown, err := d.store.StartedAttempts(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: recover send attempts: %w", err)
	}
	gens, err := d.store.Generations(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: read sessions: %w", err)
	}
	paired, err := d.loadPaired(ctx)
	if err != nil {
		return 0, 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.beginLocked(gens, paired); err != nil {
		return 0, 0, err
	}
	for _, r := range outbox {
		s := d.sessionLocked(r.SessionKey)
		s.outq = append(s.outq, &delivery{rec: r, attempts: r.Attempts, nextAt: r.NextAt, unknownSince: unknown[r.ID]})
	}
	for _, r := range pending {
		d.enqueueLocked(&item{id: r.ID, key: r.SessionKey, msg: r.Msg})
	}
	for _, s := range d.sessions {
		d.kickDeliveryLocked(s)
	}
	d.openLocked()
	return len(pending), len(outbox), nil
}

// beginLocked marks the dispatcher started with the shared state Start
// read: the sessions' generations and the paired users.
func (d *Dispatcher) beginLocked(gens map[string]int64, paired map[string]map[string]bool) error {
	if d.started {
		return errors.New("dispatch: started twice")
	}
	d.started = true
	d.gens = gens
	d.paired, d.pairedAt = paired, time.Now()
	return nil
}

// openLocked opens intake and starts the housekeeping loops.
func (d *Dispatcher) openLocked() {
	d.intakeOpen = true
	d.wg.Add(2)
	d.housekept.Store(true)
	go d.housekeeping()
	go d.chores()
}

// Deliver implements adapter.Inbox for every platform.
func (d *Dispatcher) Deliver(ctx context.Context, m *message.Inbound) error {
	d.mu.Lock()
	open, started := d.intakeOpen, d.started
	p := d.platforms[m.Platform]
	d.mu.Unlock()
	if !open && !started {
		// Not started yet: the store is not reachable (store.backend
		// nats, NATS down at start). The platform redelivers.
		d.metrics.Inbound(m.Platform, "unavailable")
		return fmt.Errorf("dispatch: %w: not started", adapter.ErrUnavailable)
	}
	if !open {
		d.metrics.Inbound(m.Platform, "stopping")
		return adapter.ErrStopping
	}
	if p == nil {
		d.metrics.Inbound(m.Platform, "error")
		return fmt.Errorf("dispatch: message from unknown platform %q", m.Platform)
	}
	if err := m.Validate(); err != nil {
		d.metrics.Inbound(m.Platform, "invalid")
		return fmt.Errorf("dispatch: %w", err)
	}
	if m.Button != "" && buttonCommand(m.Button) == "" {
		d.metrics.Inbound(m.Platform, "invalid")
		return fmt.Errorf("dispatch: %w: pressed button's data is not an approval button's", message.ErrInvalid)
	}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = time.Now()
	}
	key := m.SessionKey(p.Policy.GroupSessionsPerUser)
	if !d.mayTalk(p, m.Platform, m.SenderID) {
		return d.refuse(ctx, p, key, m)
	}
	id, dup, over, err := d.addInbound(ctx, p, key, m)
	if err != nil {
		d.metrics.Inbound(m.Platform, "error")
		return err
	}
	if dup {
		d.metrics.Inbound(m.Platform, "duplicate")
		d.adoptIfOrphan(ctx, id, key, m)
		return nil
	}
	if over != nil {
		d.overBudget(p, id, key, m, over)
		return nil
	}
	d.metrics.Inbound(m.Platform, "stored")
	if d.clustered() {
		d.enqueueOwned(&item{id: id, key: key, msg: *m, fresh: true})
		return nil
	}
	d.mu.Lock()
	d.enqueueLocked(&item{id: id, key: key, msg: *m, fresh: true})
	d.mu.Unlock()
	return nil
}

// adoptIfOrphan enqueues a redelivered message that is stored and pending
// but not tracked: its first Deliver gave up waiting for the commit (the
// platform was told it failed and redelivered), yet the commit happened.
func (d *Dispatcher) adoptIfOrphan(ctx context.Context, id int64, key string, m *message.Inbound) {
	if d.clustered() {
		// The owner's refresh takes any pending message it does not have.
		d.announceOrWake(key)
		return
	}
	d.mu.Lock()
	_, known := d.tracked[id]
	d.mu.Unlock()
	if known {
		return
	}
	pending, err := d.store.IsPending(ctx, id)
	if err != nil || !pending {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, known := d.tracked[id]; known {
		return
	}
	d.log.WithFields(logrus.Fields{"platform": m.Platform, "message": id}).Info("redelivered message was stored but never dispatched; dispatching it now")
	d.enqueueLocked(&item{id: id, key: key, msg: *m})
}

// sweepOrphans dispatches pending messages nobody tracks: stored by a
// Deliver whose caller stopped waiting before the commit, and never
// redelivered.
func (d *Dispatcher) sweepOrphans() {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	pending, err := d.store.Pending(ctx)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return
	}
	for _, r := range pending {
		if _, known := d.tracked[r.ID]; known {
			continue
		}
		// Seen at the previous sweep too: a fresh one may still be on its
		// way from Deliver to enqueue.
		if !d.orphans[r.ID] {
			d.nextOrphans[r.ID] = true
			continue
		}
		d.log.WithFields(logrus.Fields{"platform": r.Msg.Platform, "message": r.ID}).Info("stored message was never dispatched; dispatching it now")
		d.enqueueLocked(&item{id: r.ID, key: r.SessionKey, msg: r.Msg})
	}
	d.orphans, d.nextOrphans = d.nextOrphans, map[int64]bool{}
}

// refuse records a message from a sender who is not allowed, without its
// text, and answers direct messages with a refusal at most once per sender
// per RefusalInterval.
func (d *Dispatcher) refuse(ctx context.Context, p *platform, key string, m *message.Inbound) error {
	redacted := *m
	redacted.Text = ""
	id, dup, err := d.store.AddInbound(ctx, key, &redacted, store.Refused)
	if err != nil {
		d.metrics.Inbound(m.Platform, "error")
		return err
	}
	if dup {
		d.metrics.Inbound(m.Platform, "duplicate")
		return nil
	}
	d.metrics.Inbound(m.Platform, "refused")
	// The sender is in the message itself, where journalctl shows it: it is
	// what the operator adds to allowed_users. Quoted, since the platform
	// chose it.
	d.log.WithFields(logrus.Fields{"platform": m.Platform, "sender": m.SenderID, "chat": m.ChatID}).
		Infof("refused a message from user %q: not in platforms.%s.allowed_users", m.SenderID, m.Platform)
	pairing := p.Policy.DMPolicy == "pairing" && m.ChatType == message.ChatDirect
	if !pairing && (p.Policy.Unauthorized != "reply" || m.ChatType != message.ChatDirect) {
		return nil
	}
	d.mu.Lock()
	sender := m.Platform + "\x00" + m.SenderID
	if last, ok := d.refusals[sender]; ok && time.Since(last) < d.opts.RefusalInterval {
		d.mu.Unlock()
		return nil
	}
	d.refusals[sender] = time.Now()
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		it := &item{id: id, key: key, msg: *m}
		text := p.Policy.UnauthorizedText
		if pairing {
			text = d.pairingReply(m)
		}
		d.finish(it, store.Refused, text, nil)
	}()
	return nil
}

// CloseIntake makes Deliver answer adapter.ErrStopping: adapters stop
// acknowledging and platforms redeliver to the next instance.
func (d *Dispatcher) CloseIntake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.intakeOpen = false
}

func (d *Dispatcher) sessionLocked(key string) *session {
	s := d.sessions[key]
	if s == nil {
		s = &session{key: key}
		d.sessions[key] = s
	}
	if d.clustered() {
		if ps := d.owned[d.partitionOf(key)]; ps != nil {
			s.part = ps
		}
	}
	return s
}

// enqueueLocked adds a stored message to its session, handling commands at
// once.
func (d *Dispatcher) enqueueLocked(it *item) {
	d.tracked[it.id] = struct{}{}
	s := d.sessionLocked(it.key)
	it.part = s.part
	if it.msg.Button != "" {
		// Deliver let only approval buttons in.
		d.commandLocked(s, it, buttonCommand(it.msg.Button))
		return
	}
	if cmd := ParseCommand(it.msg.Text); cmd != "" {
		d.commandLocked(s, it, cmd)
		return
	}
	if d.opts.BusyPolicy == "interrupt" && s.turn != nil && s.turn.endState == store.Pending {
		s.turn.endState = store.Interrupted
		s.turn.cancel(agent.ErrStopRequested)
	}
	// Keep arrival (store id) order even when concurrent Delivers enqueue
	// out of order.
	i := sort.Search(len(s.queue), func(i int) bool { return s.queue[i].id > it.id })
	s.queue = append(s.queue, nil)
	copy(s.queue[i+1:], s.queue[i:])
	s.queue[i] = it
	d.queued++
	d.metrics.QueueDepth(d.queued)
	d.scheduleLocked(s)
}

// scheduleLocked starts the session's next turn if it may run now, or puts
// it in line for a turn slot.
func (d *Dispatcher) scheduleLocked(s *session) {
	if s.turn != nil || len(s.queue) == 0 || d.draining || d.ctx.Err() != nil || !d.mayRunLocked(s) {
		return
	}
	if wait := time.Until(s.queue[0].notBefore); wait > 0 {
		if s.retryTimer == nil {
			s.retryTimer = time.AfterFunc(wait, func() {
				d.mu.Lock()
				defer d.mu.Unlock()
				s.retryTimer = nil
				d.scheduleLocked(s)
			})
		}
		return
	}
	if d.running >= d.opts.MaxConcurrentTurns {
		if !s.inReady {
			s.inReady = true
			d.ready = append(d.ready, s)
		}
		return
	}
	d.startTurnLocked(s)
}

func (d *Dispatcher) startTurnLocked(s *session) {
	it := s.queue[0]
	s.queue = popFront(s.queue)
	d.queued--
	d.metrics.QueueDepth(d.queued)
	ctx, cancel := context.WithCancelCause(d.turnContextLocked(s))
	t := &turn{item: it, cancel: cancel, started: time.Now()}
	s.turn = t
	d.running++
	d.turns++
	d.metrics.TurnsInFlight(d.running)
	ag := d.agent
	gen := d.gens[s.key]
	p := d.platforms[it.msg.Platform]
	d.wg.Add(1)
	go d.runTurn(ctx, s, t, ag, gen, p)
}

// turnEnded releases the session's turn slot and starts what waits for it.
func (d *Dispatcher) turnEndedLocked(s *session, t *turn) {
	t.cancel(nil)
	if s.turn == t {
		s.turn = nil
	}
	d.running--
	d.metrics.TurnsInFlight(d.running)
	d.scheduleLocked(s)
	for len(d.ready) > 0 && d.running < d.opts.MaxConcurrentTurns && !d.draining {
		next := d.ready[0]
		d.ready = popFront(d.ready)
		next.inReady = false
		d.scheduleLocked(next)
	}
	d.gcLocked(s)
	d.signal()
}

// popFront removes the first element of a queue. The slot is cleared
// first: the backing array outlives the slice's start, and a pointer left
// in it would keep what it points to (a session with its queue and
// replies) alive until the array is reallocated.
func popFront[T any](q []*T) []*T {
	q[0] = nil
	if len(q) == 1 {
		return nil
	}
	return q[1:]
}

// gcLocked forgets an idle session so memory follows active sessions only.
func (d *Dispatcher) gcLocked(s *session) {
	if s.turn == nil && len(s.queue) == 0 && len(s.outq) == 0 && !s.delivering && !s.inReady && s.retryTimer == nil {
		delete(d.sessions, s.key)
		// A Go map keeps the buckets of its largest size: after a burst of
		// thousands of sessions, a new empty map gives them back.
		if len(d.sessions) == 0 {
			d.sessions = map[string]*session{}
		}
		if len(d.tracked) == 0 {
			d.tracked = map[int64]struct{}{}
		}
	}
}

// signal wakes Drain and StopPartition after activity decreased.
func (d *Dispatcher) signal() {
	select {
	case d.activity <- struct{}{}:
	default:
	}
	d.changedMu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.changedMu.Unlock()
}

// changedCh returns the channel the next signal closes.
func (d *Dispatcher) changedCh() <-chan struct{} {
	d.changedMu.Lock()
	defer d.changedMu.Unlock()
	return d.changed
}

// runTurn calls the agent for one message and records the outcome.
func (d *Dispatcher) runTurn(ctx context.Context, s *session, t *turn, ag Agent, gen int64, p *platform) {
	defer d.wg.Done()
	it := t.item
	text, err := d.callAgent(ctx, s.key, it, ag, gen, p)
	d.mu.Lock()
	endState := t.endState
	hardStop := d.ctx.Err() != nil || t.fenced
	d.mu.Unlock()
	elapsed := time.Since(t.started)
	log := d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "session": s.key, "message": it.id})
	switch {
	case endState == store.Interrupted:
		d.metrics.Turn(it.msg.Platform, "interrupted", elapsed)
		d.metrics.AgentTurn("cancelled")
		if err := d.store.SetState(d.bg(), []int64{it.id}, store.Interrupted); err != nil {
			log.WithError(err).Error("cannot record interrupted turn")
		}
	case endState == store.Dropped:
		// The command handler recorded it.
		d.metrics.Turn(it.msg.Platform, "dropped", elapsed)
		d.metrics.AgentTurn("cancelled")
	case err == nil:
		d.metrics.Turn(it.msg.Platform, "done", elapsed)
		d.metrics.AgentTurn("ok")
		var hist []store.HistoryEntry
		if !ag.KeepsHistory() {
			user := it.userText
			if user == "" {
				user = it.msg.Text
			}
			hist = []store.HistoryEntry{{Role: "user", Content: user}, {Role: "assistant", Content: text}}
		}
		d.finish(it, store.Done, text, hist)
	case t.fenced:
		// Its partition moved to another node, which runs it again.
		d.metrics.Turn(it.msg.Platform, "cancelled", elapsed)
		d.metrics.AgentTurn("cancelled")
		log.Info("turn cancelled: its partition moved to another node; left pending for the new owner")
	case hardStop || errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// Shutdown: left pending for the next instance.
		d.metrics.Turn(it.msg.Platform, "cancelled", elapsed)
		d.metrics.AgentTurn("cancelled")
		log.Info("turn cancelled by shutdown; left pending for the next instance")
	case errors.Is(err, agent.ErrRejected), errors.Is(err, agent.ErrProtocol):
		d.metrics.Turn(it.msg.Platform, "failed", elapsed)
		d.metrics.AgentTurn("error")
		log.WithError(err).Warn("agent rejected the turn")
		d.finish(it, store.Failed, rejectedText(err), nil)
	default:
		// Unavailable, rate limited, timed out: run it again later, then
		// tell the user.
		d.metrics.AgentTurn("error")
		d.mu.Lock()
		if it.attempts < d.opts.TurnRetries && !d.draining {
			it.attempts++
			backoff := d.opts.TurnRetryBackoff << (it.attempts - 1)
			it.notBefore = time.Now().Add(adapter.Backoff{Min: backoff, Max: backoff, Jitter: 0.2}.Delay(0))
			s.queue = append([]*item{it}, s.queue...)
			d.queued++
			d.metrics.QueueDepth(d.queued)
			log.WithError(err).WithField("retry_in", backoff).Warn("agent unavailable; turn will run again")
			d.turnEndedLocked(s, t)
			d.mu.Unlock()
			return
		}
		draining := d.draining
		d.mu.Unlock()
		if draining {
			log.WithError(err).Info("agent unavailable during drain; left pending for the next instance")
			break
		}
		d.metrics.Turn(it.msg.Platform, "failed", elapsed)
		log.WithError(err).Error("agent unavailable; giving up on the turn")
		d.finish(it, store.Failed, "Sorry, the agent is not reachable right now. Please try again later.", nil)
	}
	d.mu.Lock()
	d.forgetApprovalLocked(it.key, it.id, "")
	// Recorded (or, if recording failed, left pending for the sweep or the
	// next instance): no longer this dispatcher's.
	d.untrackLocked(it.id)
	d.turnEndedLocked(s, t)
	d.mu.Unlock()
}

// callAgent builds the request and runs it, streaming edits if enabled.
func (d *Dispatcher) callAgent(ctx context.Context, key string, it *item, ag Agent, gen int64, p *platform) (string, error) {
	sessionID := key
	if gen > 0 {
		sessionID = fmt.Sprintf("%s#%d", key, gen)
	}
	var msgs []agent.Message
	if !ag.KeepsHistory() {
		if d.opts.SystemPrompt != "" {
			msgs = append(msgs, agent.Message{Role: "system", Content: d.opts.SystemPrompt})
		}
		hist, err := d.store.History(ctx, key, gen, d.opts.HistoryMessages)
		if err != nil {
			return "", err
		}
		for _, h := range hist {
			msgs = append(msgs, agent.Message{Role: h.Role, Content: h.Content})
		}
	}
	um, err := d.userMessage(ctx, it, p)
	if err != nil {
		return "", err
	}
	it.userText = um.Content
	msgs = append(msgs, um)
	req := agent.Request{
		SessionID:  sessionID,
		SessionKey: key,
		Messages:   msgs,
	}
	attempt := 0
	if !it.fresh {
		if attempt, err = d.store.Rerun(ctx, it.id); err != nil {
			return "", err
		}
		if runID, body, ok, err := d.store.Run(ctx, it.id); err != nil {
			return "", err
		} else if ok {
			req.Run = &agent.Run{ID: runID, Body: body}
		}
	}
	// A later turn of the message (a retry) reads what this one records.
	it.fresh = false
	req.IdempotencyKey = runKey(it.msg, attempt)
	var streamer *editStreamer
	if d.opts.StreamEdits && p != nil && p.editor != nil {
		streamer = &editStreamer{d: d, p: p, it: it, ctx: ctx}
	}
	ev := agent.Events{RunStarted: func(r agent.Run) error {
		// Recorded even if the turn's context ends meanwhile (shutdown):
		// the next instance re-attaches to the run.
		ctx, cancel := context.WithTimeout(d.bg(), 10*time.Second)
		defer cancel()
		return d.store.SetRun(ctx, it.id, r.ID, r.Body)
	}}
	if _, ok := ag.(approver); ok {
		ev.Approval = func(a agent.Approval) { d.onApproval(it, a) }
	}
	if streamer != nil {
		ev.Delta = streamer.delta
	}
	text, err := ag.Complete(ctx, req, ev)
	if attempt < maxReruns && d.opts.RerunInterrupted && interrupted(err) {
		attempt++
		d.log.WithFields(logrus.Fields{"session": key, "message": it.id, "attempt": attempt}).WithError(err).
			Warn("the backend restarted during the run; running the turn again under a new idempotency key (its tools may run twice)")
		if err := d.store.SetRerun(d.bg(), it.id, attempt); err != nil {
			return "", err
		}
		req.IdempotencyKey = runKey(it.msg, attempt)
		req.Run = nil
		text, err = ag.Complete(ctx, req, ev)
	}
	if err == nil && streamer != nil {
		streamer.done(text)
	}
	return text, err
}

// bg is the context for store writes that must happen even when the turn's
// own context ended (recording its outcome).
func (d *Dispatcher) bg() context.Context {
	return context.Background()
}

// finish records the end of a turn or command with its reply and queues the
// reply parts for delivery.
func (d *Dispatcher) finish(it *item, st store.State, text string, hist []store.HistoryEntry) {
	d.mu.Lock()
	p := d.platforms[it.msg.Platform]
	gen := d.gens[it.key]
	d.mu.Unlock()
	limit := adapter.DefaultMaxMessageLen
	if p != nil {
		limit = p.limit
	}
	if st == store.Done && len(it.notices) > 0 {
		text = strings.TrimSpace(strings.Join(it.notices, "\n") + "\n\n" + text)
	}
	var replies []message.Outbound
	if st == store.Done && d.opts.Media != nil && text != "" {
		replies = d.mediaReplies(it, text, limit)
	} else {
		replies = d.replies(it, text, limit)
	}
	recs, ok := d.record(it, st, gen, replies, hist)
	if !ok {
		return
	}
	d.queueDeliveries(it.key, it.part, recs)
}

// queueDeliveries hands stored reply parts of session key to delivery.
// part is the ownership of the key's partition the parts were recorded
// under (nil for work that belongs to no partition's owner, such as a
// sent message).
func (d *Dispatcher) queueDeliveries(key string, part *partState, recs []store.OutboxRecord) {
	if len(recs) == 0 {
		return
	}
	d.mu.Lock()
	if d.fencedLocked(part) || d.clustered() && d.ownedLocked(key) == nil {
		// Another node's partition, or one whose ownership ended while the
		// parts were recorded (even if this node owns it again by now):
		// the owner reads them from the store and delivers them, in order
		// with the rest of the conversation (woken here when it is this
		// node).
		d.mu.Unlock()
		d.announceOrWake(key)
		return
	}
	defer d.mu.Unlock()
	s := d.sessionLocked(key)
	for _, r := range recs {
		// A refresh between the store's commit and this lock may have
		// queued the part already.
		if !d.outInHandLocked(r.ID) {
			d.addDeliveryLocked(s, &delivery{rec: r})
		}
	}
	d.kickDeliveryLocked(s)
	d.gcLocked(s)
}

// outInHandLocked reports whether reply part id is queued or being sent
// here, or was delivered here a moment ago.
func (d *Dispatcher) outInHandLocked(id int64) bool {
	_, ok := d.outTracked[id]
	return ok || !d.recentOut[id].IsZero()
}

// addDeliveryLocked queues a reply part of session s.
func (d *Dispatcher) addDeliveryLocked(s *session, dl *delivery) {
	if d.outTracked != nil {
		d.outTracked[dl.rec.ID] = struct{}{}
	}
	dl.part = s.part
	s.outq = append(s.outq, dl)
}

func (d *Dispatcher) replies(it *item, text string, limit int) []message.Outbound {
	if text == "" {
		return nil
	}
	parts := Split(text, limit)
	if len(parts) > d.opts.MaxReplyParts {
		d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "message": it.id, "parts": len(parts), "max_reply_parts": d.opts.MaxReplyParts}).
			Warn("reply longer than dispatch.max_reply_parts messages; the rest is cut")
		parts = Cut(parts, d.opts.MaxReplyParts, limit)
	}
	out := make([]message.Outbound, len(parts))
	for i, part := range parts {
		o := it.msg.ReplyTo()
		o.Text = part
		o.Part, o.Parts = i+1, len(parts)
		o.IdempotencyKey = message.IdempotencyKey(it.msg.Platform, it.msg.EventID, i+1)
		if i > 0 {
			// Only the first part replaces a streamed message.
			delete(o.Meta, metaEditID)
		}
		out[i] = o
	}
	return out
}

// Stats is a snapshot of the dispatcher's work.
type Stats struct {
	TurnsInFlight int
	Queued        int
	Sessions      int
	// Turns counts the turns started since Start: two snapshots with the
	// same count and no session between them saw no activity.
	Turns          uint64
	RepliesPending int
	Sending        int
	// Unrecorded counts finished turns whose end the store has not taken
	// yet (disk full): their replies wait in memory for the write to
	// succeed.
	Unrecorded   int
	OldestQueued time.Time // zero if nothing waits
	IntakeOpen   bool
	Draining     bool
}

// Stats returns a snapshot.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Stats{
		TurnsInFlight: d.running,
		Queued:        d.queued,
		Sessions:      len(d.sessions),
		Turns:         d.turns,
		Sending:       d.sending,
		Unrecorded:    d.unrecorded,
		IntakeOpen:    d.intakeOpen,
		Draining:      d.draining,
	}
	for _, s := range d.sessions {
		st.RepliesPending += len(s.outq)
		if len(s.queue) > 0 {
			if at := s.queue[0].msg.ReceivedAt; st.OldestQueued.IsZero() || at.Before(st.OldestQueued) {
				st.OldestQueued = at
			}
		}
		if s.turn != nil {
			if at := s.turn.item.msg.ReceivedAt; st.OldestQueued.IsZero() || at.Before(st.OldestQueued) {
				st.OldestQueued = at
			}
		}
	}
	return st
}

// Check is the watchdog's liveness probe: it succeeds when the
// dispatcher's housekeeping loop, which takes the dispatcher's lock,
// answers before ctx ends.
func (d *Dispatcher) Check(ctx context.Context) error {
	if !d.housekept.Load() {
		// No housekeeping loop to probe before Start (the daemon waits
		// for an unreachable store). The lock is not taken here: Check
		// must fail, not hang, when it is held.
		return nil
	}
	reply := make(chan struct{})
	select {
	case d.probe <- reply:
	case <-ctx.Done():
		return errors.New("dispatch: housekeeping loop did not take the probe")
	case <-d.ctx.Done():
		return nil
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return errors.New("dispatch: housekeeping loop did not answer the probe (dispatcher lock held?)")
	}
}

// housekeeping answers the watchdog's probe (Check) and forgets old
// refusals. It never calls the store, whose calls may take their whole
// timeout: a store that is slow or unreachable must not look like a hung
// dispatcher and get herald killed by the watchdog. chores does that.
func (d *Dispatcher) housekeeping() {
	defer d.wg.Done()
	refusals := time.NewTicker(5 * time.Second)
	defer refusals.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case reply := <-d.probe:
			d.mu.Lock()
			// Taking the lock is the probe: a deadlocked dispatcher cannot.
			d.mu.Unlock()
			close(reply)
		case <-refusals.C:
			d.mu.Lock()
			for k, at := range d.refusals {
				if time.Since(at) > d.opts.RefusalInterval {
					delete(d.refusals, k)
				}
			}
			d.mu.Unlock()
		}
	}
}

// chores is the periodic work on the store: the gauges, the sweep (cluster
// mode: the owned partitions read again) and the hourly prune.
func (d *Dispatcher) chores() {
	defer d.wg.Done()
	gauges := time.NewTicker(5 * time.Second)
	defer gauges.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	sweep := time.NewTicker(15 * time.Second)
	defer sweep.Stop()
	d.updateGauges()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-gauges.C:
			d.updateGauges()
		case <-sweep.C:
			if d.clustered() {
				d.sweepPartitions()
			} else {
				d.sweepOrphans()
			}
		case <-prune.C:
			d.prune()
		}
	}
}

func (d *Dispatcher) updateGauges() {
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	st, err := d.store.Stats(ctx)
	if err != nil {
		return
	}
	d.metrics.OutboxPending(st.PendingOutbox)
	if st.OldestPending.IsZero() {
		d.metrics.OldestPending(0)
	} else {
		d.metrics.OldestPending(time.Since(st.OldestPending))
	}
	if st.OldestOutbox.IsZero() {
		d.metrics.OldestPendingReply(0)
	} else {
		d.metrics.OldestPendingReply(time.Since(st.OldestOutbox))
	}
}

// Drain stops starting new turns and waits until running turns have ended
// and ready replies are delivered, or ctx ends. Then (in both cases) it
// cancels whatever still runs, waits briefly for those goroutines, and
// returns; work not finished stays pending in the store. It returns nil if
// everything finished, else an error saying what was left.
func (d *Dispatcher) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.intakeOpen = false
	if !d.draining {
		d.draining = true
		close(d.drainCh)
	}
	for _, s := range d.sessions {
		if s.retryTimer != nil {
			s.retryTimer.Stop()
			s.retryTimer = nil
		}
		s.inReady = false
	}
	d.ready = nil
	d.mu.Unlock()
	var left error
wait:
	for {
		d.mu.Lock()
		running, deliverers, commands := d.running, d.deliverers, d.commands
		d.mu.Unlock()
		if running == 0 && deliverers == 0 && commands == 0 {
			break
		}
		select {
		case <-d.activity:
		case <-ctx.Done():
			left = fmt.Errorf("dispatch: drain timed out with %d turns running and %d sessions delivering; left pending for the next instance", running, deliverers)
			break wait
		}
	}
	d.Close()
	return left
}

// Close cancels all work and waits up to a second for its goroutines.
// Work not finished stays pending in the store.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	d.closeApprovalsLocked()
	d.intakeOpen = false
	d.draining = true
	select {
	case <-d.drainCh:
	default:
		close(d.drainCh)
	}
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		d.log.Warn("some turns or deliveries did not end within 1s of cancellation; abandoning them")
	}
}
