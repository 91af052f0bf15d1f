// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/metrics"
)

// platform is a built adapter and the configuration it was built from.
type platform struct {
	name    string
	conf    *config.Platform
	adapter adapter.Adapter
	// cancel ends the context given to Start; called after Stop returned
	// or was abandoned.
	cancel context.CancelFunc
}

// buildPlatforms builds an adapter for every enabled platform of cfg.
// Platforms in keep whose adapter settings did not change are reused as
// they are (a reload restarts only what changed). No network I/O happens
// here; credentials are read, so a missing one is a configuration error.
func (d *daemon) buildPlatforms(cfg *config.Config, keep map[string]*platform) (map[string]*platform, error) {
	out := map[string]*platform{}
	var names []string
	for name := range cfg.Platforms {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pc := cfg.Platforms[name]
		if !pc.IsEnabled() {
			continue
		}
		d.warnPolicy(cfg, name, pc)
		if old, ok := keep[name]; ok && sameAdapterSettings(old.conf, pc) {
			out[name] = &platform{name: name, conf: pc, adapter: old.adapter, cancel: old.cancel}
			continue
		}
		a, err := d.buildAdapter(cfg, name, pc)
		if err != nil {
			return nil, err
		}
		out[name] = &platform{name: name, conf: pc, adapter: a}
	}
	return out, nil
}

// buildAdapter builds one adapter of platform name (no network I/O).
func (d *daemon) buildAdapter(cfg *config.Config, name string, pc *config.Platform) (adapter.Adapter, error) {
	t, _ := adapter.Lookup(pc.Type) // validated by config
	env := adapter.Env{
		Name:    name,
		Log:     d.logger.WithFields(logrus.Fields{"component": "adapter/" + pc.Type, "platform": name}),
		Report:  d.board.reporter(name, pc.Type),
		Metrics: d.metrics.ForAdapter(name),
	}
	// A private directory for state the adapter keeps across restarts
	// (Discord's resumable session). Without it the adapter still runs.
	stateDir := filepath.Join(cfg.StateDir, "platforms", name)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		env.Log.WithError(err).Warn("cannot create the platform's state directory; it keeps no state across restarts")
	} else {
		env.StateDir = stateDir
	}
	env.States = platformStates(cfg, d.nats, name, pc.Type, env.StateDir, env.Log)
	a, err := t.New(pc.Settings, env)
	if err != nil {
		return nil, fmt.Errorf("%s: platforms.%s: %w", cfg.File, name, err)
	}
	return a, nil
}

// sameAdapterSettings reports whether a platform can keep its running
// adapter: same type and same adapter settings. Policy keys
// (allowed_users, unauthorized, …) are applied without a restart.
func sameAdapterSettings(a, b *config.Platform) bool {
	return a.Type == b.Type && reflect.DeepEqual(a.Settings, b.Settings)
}

func dispatchPlatforms(ps map[string]*platform, cfg *config.Config) map[string]dispatch.Platform {
	out := make(map[string]dispatch.Platform, len(ps))
	for name, p := range ps {
		group := *cfg.Dispatch.GroupSessionsPerUser
		if p.conf.GroupSessionsPerUser != nil {
			group = *p.conf.GroupSessionsPerUser
		}
		out[name] = dispatch.Platform{
			Adapter: p.adapter,
			Policy: dispatch.Policy{
				AllowAll:             p.conf.Policy() == "open",
				DMPolicy:             p.conf.Policy(),
				AllowedUsers:         p.conf.AllowedUsers,
				Unauthorized:         p.conf.Unauthorized,
				UnauthorizedText:     p.conf.UnauthorizedText,
				GroupSessionsPerUser: group,
			},
			Idempotent: adapter.DeduplicatesSends(p.conf.Type),
			HomeChat:   p.conf.HomeChat,
		}
	}
	return out
}

func dispatchOptions(cfg *config.Config) dispatch.Options {
	return dispatch.Options{
		BusyPolicy:         cfg.Dispatch.BusyPolicy,
		MaxConcurrentTurns: cfg.Dispatch.MaxConcurrentTurns,
		HistoryMessages:    cfg.Agent.HistoryMessages,
		SystemPrompt:       cfg.Agent.SystemPrompt,
		StreamEdits:        cfg.Dispatch.StreamEdits,
		StreamEditInterval: cfg.Dispatch.StreamEditInterval,
		MaxReplyParts:      cfg.Dispatch.MaxReplyParts,
		DeliveryTimeout:    cfg.Delivery.Timeout,
		MaxAttempts:        cfg.Delivery.MaxAttempts,
		InitialBackoff:     cfg.Delivery.InitialBackoff,
		MaxBackoff:         cfg.Delivery.MaxBackoff,
		Retention:          cfg.Store.Retention,
		ApprovalTimeout:    cfg.Agent.ApprovalTimeout,
		RerunInterrupted:   cfg.Agent.RerunInterrupted,
		HistoryRetention:   cfg.Store.HistoryRetention,
		Limits: dispatch.UserLimits{
			TurnsPerMinute:     cfg.Limits.PerUser.TurnsPerMinute,
			TurnsPerDay:        cfg.Limits.PerUser.TurnsPerDay,
			MaxQueued:          cfg.Limits.PerUser.MaxQueued,
			Exempt:             cfg.Limits.PerUser.Exempt,
			ExemptAllowedUsers: cfg.Limits.PerUser.ExemptAllowedUsers,
		},
	}
}

// startPlatforms starts the adapters of ps that are not running yet.
// Start does not block on the network; an adapter whose Start fails is
// shown as fatal and the others run on. In cluster mode the adapter of a
// leased platform is not started: the dispatcher sends through it, and
// the platform's intake runs in another instance on the holder of its
// lease (clusterNode).
func (d *daemon) startPlatforms(ps map[string]*platform) {
	for _, p := range ps {
		if p.cancel != nil {
			continue
		}
		if d.clusterNode != nil && adapter.Leased(p.conf.Type) {
			p.cancel = func() {} // marks it started
			d.board.reportFirst(p.name, p.conf.Type, adapter.Status{Phase: adapter.PhaseStandby})
			continue
		}
		_ = d.startAdapter(p)
	}
	d.mu.Lock()
	d.platforms = ps
	d.mu.Unlock()
}

// startAdapter starts p's adapter with the dispatcher as its inbox. A
// failure is logged and shown as fatal on the board, and returned.
func (d *daemon) startAdapter(p *platform) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	d.board.report(p.name, p.conf.Type, adapter.Status{Phase: adapter.PhaseStarting})
	err := p.adapter.Start(ctx, d.disp)
	if err != nil {
		logging.Event(d.log, logging.MsgAdapterFatal).WithError(err).WithField("platform", p.name).Error("platform failed to start")
		d.board.report(p.name, p.conf.Type, adapter.Status{Phase: adapter.PhaseFatal, Err: err})
	}
	return err
}

func (d *daemon) running() []*platform {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*platform, 0, len(d.platforms))
	for _, p := range d.platforms {
		out = append(out, p)
	}
	return out
}

// stopPlatforms stops ps concurrently, each with its own timeout. It
// returns after all returned or after timeout plus a short grace: an
// adapter that ignores its context is logged by name and abandoned, so one
// stuck disconnect can never hold the process until systemd's SIGKILL (a
// disconnect blocked on network I/O, then a kill, a stale PID file and a
// restart loop is how gateways built on platform SDKs fail).
func (d *daemon) stopPlatforms(ps []*platform, timeout time.Duration) {
	if len(ps) == 0 {
		return
	}
	// Each adapter's Stop gets a context ending a little before the bound
	// (the contract gives it 100 ms after its context to return), and the
	// bound itself is when an adapter is abandoned: a hung adapter costs
	// exactly adapter_timeout, not more.
	const margin = 100 * time.Millisecond
	stopCtxTimeout := timeout - margin
	if stopCtxTimeout < timeout/2 {
		stopCtxTimeout = timeout / 2
	}
	type result struct {
		name string
		err  error
		took time.Duration
	}
	results := make(chan result, len(ps))
	for _, p := range ps {
		go func(p *platform) {
			ctx, cancel := context.WithTimeout(context.Background(), stopCtxTimeout)
			defer cancel()
			start := time.Now()
			err := p.adapter.Stop(ctx)
			results <- result{p.name, err, time.Since(start)}
		}(p)
	}
	pending := map[string]*platform{}
	for _, p := range ps {
		pending[p.name] = p
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(pending) > 0 {
		select {
		case r := <-results:
			p := pending[r.name]
			delete(pending, r.name)
			p.cancel()
			entry := d.log.WithFields(logrus.Fields{"platform": r.name, "took": r.took.Round(time.Millisecond)})
			if r.err != nil {
				entry.WithError(r.err).Warn("platform stopped with an error")
			} else {
				entry.Debug("platform stopped")
			}
			d.board.report(r.name, p.conf.Type, adapter.Status{Phase: adapter.PhaseStopped})
		case <-deadline.C:
			for name, p := range pending {
				logging.Event(d.log, logging.MsgAdapterStopTimeout).WithFields(logrus.Fields{
					"platform": name, "timeout": timeout,
				}).Warn("platform did not stop within shutdown.adapter_timeout; abandoning it")
				p.cancel()
			}
			return
		}
	}
}

// board collects adapter status reports for STATUS=, /readyz and
// herald status.
type board struct {
	metrics *metrics.Metrics
	changed chan struct{}

	mu     sync.Mutex
	states map[string]platformState
}

type platformState struct {
	Type   string
	Status adapter.Status
	Since  time.Time
}

func newBoard(m *metrics.Metrics) *board {
	return &board{metrics: m, changed: make(chan struct{}, 1), states: map[string]platformState{}}
}

func (b *board) reporter(name, typ string) func(adapter.Status) {
	return func(st adapter.Status) { b.report(name, typ, st) }
}

func (b *board) report(name, typ string, st adapter.Status) { b.set(name, typ, st, false) }

// reportFirst reports st unless the platform has reported already.
func (b *board) reportFirst(name, typ string, st adapter.Status) { b.set(name, typ, st, true) }

func (b *board) set(name, typ string, st adapter.Status, first bool) {
	b.mu.Lock()
	prev, seen := b.states[name]
	if first && seen {
		b.mu.Unlock()
		return
	}
	since := prev.Since
	if prev.Status.Phase != st.Phase || since.IsZero() {
		since = time.Now()
	}
	b.states[name] = platformState{Type: typ, Status: st, Since: since}
	b.mu.Unlock()
	b.metrics.AdapterUp(name, typ, st.Phase == adapter.PhaseConnected)
	b.metrics.AdapterState(name, typ, string(st.Phase))
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// forget drops platforms not in names (removed by a reload).
func (b *board) forget(keep map[string]*platform) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, st := range b.states {
		if _, ok := keep[name]; !ok {
			delete(b.states, name)
			b.metrics.AdapterUp(name, st.Type, false)
			b.metrics.ForgetAdapter(name, st.Type)
		}
	}
}

func (b *board) snapshot() map[string]platformState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]platformState, len(b.states))
	for k, v := range b.states {
		out[k] = v
	}
	return out
}

// summary renders the platform part of STATUS=, e.g.
// "2/3 platforms connected (telegram: reconnecting in 8s)".
func (b *board) summary() (connected, total int, detail string) {
	states := b.snapshot()
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var notes []string
	for _, n := range names {
		st := states[n].Status
		total++
		switch st.Phase {
		case adapter.PhaseConnected:
			connected++
			if st.Alarm != "" {
				notes = append(notes, n+": "+st.Alarm)
			}
		case adapter.PhaseReconnecting:
			note := n + ": reconnecting"
			if wait := time.Until(st.RetryAt).Round(time.Second); wait > 0 {
				note += " in " + wait.String()
			}
			if st.Alarm != "" {
				note += ", " + st.Alarm
			}
			notes = append(notes, note)
		case adapter.PhaseStandby:
			// Cluster mode: another node receives for it.
			total--
			notes = append(notes, n+": standby")
		case adapter.PhaseFatal:
			note := n + ": failed"
			if st.Err != nil {
				note += ": " + st.Err.Error()
			}
			notes = append(notes, note)
		default:
			notes = append(notes, n+": "+string(st.Phase))
		}
	}
	return connected, total, strings.Join(notes, "; ")
}

// statusLine is STATUS= while running, e.g. "ready: 2/3 platforms
// connected (telegram: reconnecting in 8s); 0 turns in flight".
func (d *daemon) statusLine() string {
	connected, total, detail := d.board.summary()
	var b strings.Builder
	note, cl := d.storeNote(), ""
	if d.clusterNode != nil {
		// A node that is not a cluster member runs no turn: degraded.
		var member bool
		cl, member = d.clusterNode.summary()
		if !member && note == "" {
			note, cl = cl, ""
		}
	}
	if note != "" {
		fmt.Fprintf(&b, "degraded: %s; %d/%d platforms connected", note, connected, total)
	} else {
		fmt.Fprintf(&b, "ready: %d/%d platforms connected", connected, total)
	}
	if detail != "" {
		fmt.Fprintf(&b, " (%s)", detail)
	}
	if d.disp != nil {
		st := d.disp.Stats()
		fmt.Fprintf(&b, "; %d turns in flight", st.TurnsInFlight)
		if st.Queued > 0 {
			fmt.Fprintf(&b, ", %d queued", st.Queued)
		}
		if st.Unrecorded > 0 {
			fmt.Fprintf(&b, ", %d finished turns waiting for the store", st.Unrecorded)
		}
	}
	if cl != "" {
		fmt.Fprintf(&b, "; %s", cl)
	}
	d.mu.Lock()
	rejected := d.lastReloadErr
	d.mu.Unlock()
	if rejected != "" {
		// Stays until a reload succeeds, so `systemctl status` keeps
		// saying why the running configuration is not the file's.
		lines := strings.Split(rejected, "\n")
		fmt.Fprintf(&b, "; reload rejected: %s", lines[0])
		if len(lines) > 1 {
			fmt.Fprintf(&b, " (and %d more)", len(lines)-1)
		}
	}
	return b.String()
}
