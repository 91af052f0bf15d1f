// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/instance"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/systemd/activation"
	"github.com/heraldgw/herald/pkg/systemd/notify"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
	"github.com/heraldgw/herald/pkg/systemd/watchdog"
	"github.com/heraldgw/herald/pkg/version"
)

// Options are what the command line gives Run.
type Options struct {
	// ConfigPath is the configuration file; "" runs the built-in default
	// (webhook platform on 127.0.0.1, echo agent, state under ./.herald).
	ConfigPath string
	// Stderr receives logs (os.Stderr in production).
	Stderr *os.File
	// OnListening, if set, is called once the listeners are known, with
	// their addresses; `herald run` prints them for `make run`.
	OnListening func(httpAddr, adminAddr string)
	// OnStopping, if set, is called when the stop sequence begins with the
	// longest it can take. main arms a last-resort exit with it.
	OnStopping func(bound time.Duration)
}

// stopSlack is the "small constant" of the stop bound: closing the HTTP
// listener, the store and the logs.
const stopSlack = 2 * time.Second

// Run is herald's lifecycle, top to bottom. It returns nil after a stop
// requested by SIGTERM or SIGINT (or ctx), and an *ExitError when start-up
// fails.
func Run(ctx context.Context, opts Options) error {
	// When this process started: systemd copied the credentials before it,
	// so a secret file changed after it is not in use (see changedSecrets).
	started := time.Now()
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	// Signals are caught before anything else so a SIGTERM during start-up
	// still ends in an orderly exit.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	// 1. Configuration: strict; any error is EX_CONFIG before anything else
	// happens, and READY=1 is never sent.
	cfg, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return configError(opts.Stderr, err)
	}
	logger, err := logging.New(cfg.Log.Level, cfg.Log.Format, opts.Stderr)
	if err != nil {
		return exitErr(ExitConfig, fmt.Errorf("%s: log: %w", cfg.File, err))
	}
	log := logger.WithField("component", "daemon")
	n := notify.New(log)
	m := metrics.New(version.Version)
	d := &daemon{
		opts:      opts,
		cfg:       cfg,
		logger:    logger,
		log:       log,
		notifier:  n,
		metrics:   m,
		board:     newBoard(m),
		reloads:   make(chan reloadRequest),
		probes:    make(chan chan struct{}),
		stopping:  make(chan struct{}),
		journaled: logging.IsJournalStream(opts.Stderr),
		startedAt: started,
	}
	logging.Event(log, logging.MsgStarting).WithFields(logrus.Fields{
		"version": version.String(), "config": describeConfig(cfg),
	}).Info("herald starting")
	if limit, err := memoryLimitFromCgroup(os.Getenv, "/sys/fs/cgroup", "/proc/self/cgroup"); err != nil {
		log.WithError(err).Warn("cannot read the unit's MemoryHigh; the Go runtime has no memory limit")
	} else if limit > 0 {
		log.WithField("limit_bytes", limit).Debug("Go memory limit set from the unit's MemoryHigh")
	}
	startFaults, err := d.armFaults()
	if err != nil {
		logging.Event(log, logging.MsgConfigInvalid).WithError(err).Error("invalid configuration; herald does not start")
		return d.failed(ExitConfig, err)
	}

	// 2. Listeners: socket activation by name, read once; fall back to
	// binding the configured addresses.
	if err := d.obtainListeners(); err != nil {
		return d.listenError(ctx, err)
	}
	defer d.closeListeners()

	// 3. Single instance: systemd's unit state over D-Bus, then a
	// kernel-released lock on the state directory, which the system and
	// a user service never share.
	if err := checkStateDirScope(unitstate.Detect(), cfg.StateDir); err != nil {
		logging.Event(log, logging.MsgConfigInvalid).Error(err.Error())
		return d.failed(ExitConfig, err)
	}
	if err := d.guardSingleInstance(ctx); err != nil {
		logging.Event(log, logging.MsgInstanceRefused).Error(err.Error())
		return d.failed(ExitRunning, err)
	}
	defer d.lock.Close()
	if d.api, err = d.prepareAPI(); err != nil {
		d.log.WithError(err).Error("cannot open the send API listener")
		return d.failed(ExitCode(err), err)
	}
	defer d.closeAPI()
	if bound := stopBound(cfg); d.timeoutStop > 0 && bound > d.timeoutStop {
		log.WithFields(logrus.Fields{"stop_bound": bound, "timeout_stop": d.timeoutStop}).
			Warn("the unit's TimeoutStopSec is below herald's stop bound (drain_timeout + adapter_timeout + 2s, plus adapter_timeout in cluster mode): herald extends it while turns drain, but an idle stop must fit in it")
	}

	// 4. State: the message store. herald never runs without it. With
	// backend nats, one bounded attempt to reach NATS here; if it fails
	// herald still starts and gets ready, degraded, and retries (step 5).
	if cfg.Store.Backend == "nats" {
		d.nats = newNATSBackend(cfg.Store.NATS, natsClientName(), logger.WithField("component", "store"), d.onNATSState)
		d.store = d.nats
		defer d.closeStore()
		if err := d.nats.connect(ctx); err != nil {
			d.nats.log.WithError(err).Warn("NATS unreachable at start: herald starts degraded, refuses new messages (platforms redeliver) and retries")
		} else {
			d.importPairings(ctx, cfg.File, log)
		}
	} else {
		st, err := store.Open(ctx, cfg.Store.Path, store.Options{SyncFull: cfg.Store.Sync == "full", OnCommit: m.StoreCommit, OnHealth: d.onStoreHealth(cfg.Store.Path)})
		if err != nil {
			return d.storeFailed("cannot open the message store", err)
		}
		d.store = sqliteBackend{st}
		m.WatchStore(st.Path())
		defer d.closeStore()
		d.importPairings(ctx, cfg.File, log)
	}

	// 5. The core and the adapters. Building validates credentials (no
	// network); starting never blocks on a platform: one that cannot be
	// reached retries in the background and shows in STATUS=.
	ag, err := agent.New(cfg.Agent, logger.WithField("component", "agent"))
	if err != nil {
		err = fmt.Errorf("%s: %w", cfg.File, err)
		logging.Event(log, logging.MsgConfigInvalid).WithError(err).Error("invalid configuration; herald does not start")
		return d.failed(ExitConfig, err)
	}
	platforms, err := d.buildPlatforms(cfg, nil)
	if err != nil {
		logging.Event(log, logging.MsgConfigInvalid).WithError(err).Error("invalid configuration; herald does not start")
		return d.failed(ExitConfig, err)
	}
	mediaOpts, err := buildMedia(cfg, d.metrics)
	if err != nil {
		return d.setupFailed(cfg.File, "cannot set up media; herald does not start", err)
	}
	d.media = mediaOpts
	dopts := dispatchOptions(cfg)
	dopts.Media = mediaOpts
	// Approval buttons are signed with a key of their own in state_dir,
	// shared by every instance, so a button pressed after a restart is
	// still recognised.
	if dopts.ButtonKey, err = buttonKey(cfg); err != nil {
		return d.setupFailed(cfg.File, "cannot set up approval buttons; herald does not start", err)
	}
	if cfg.Cluster.Enabled {
		d.clusterNode = newClusterNode(d, cfg, logger.WithField("component", "cluster"))
		d.cluster = d.clusterNode
		dopts.Partitions = cfg.Cluster.Partitions
		dopts.Announce = d.clusterNode.announce
	}
	d.disp = dispatch.New(d.store, ag, dispatchPlatforms(platforms, cfg), dopts, logger.WithField("component", "dispatch"), m)
	if d.nats != nil {
		d.startNATS(ctx)
	} else if err := d.startDispatch(ctx); err != nil {
		return d.storeFailed("cannot read the work left in the message store", err)
	}
	// Adapters start before the HTTP listener serves: requests that queued
	// in the socket's backlog during a restart must find the webhook route
	// open, not a 503.
	d.startPlatforms(platforms)
	d.serveHTTP(platforms)
	d.serveAdmin()
	d.serveMetrics()
	d.serveAPI()

	// 6. Ready: listeners serve and the dispatcher accepts.
	n.Ready(d.statusLine())
	logging.Event(log, logging.MsgReady).WithFields(logrus.Fields{
		"http": d.httpLn.Addr().String(), "admin": d.adminLn.Addr().String(), "metrics": d.metricsAddr(),
	}).Info("herald ready")
	if d.opts.OnListening != nil {
		d.opts.OnListening(d.httpLn.Addr().String(), d.adminLn.Addr().String())
	}
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	var wdDone sync.WaitGroup
	if interval, ok := watchdog.Interval(); ok {
		check := cfg.Watchdog.CheckTimeout
		if quarter := interval / 2; check > quarter {
			check = quarter
		}
		wdDone.Add(1)
		go func() {
			defer wdDone.Done()
			watchdog.Run(wdCtx, n, interval, check, d.watchdogCheck, logger.WithField("component", "watchdog"), m.WatchdogPing)
		}()
	}

	// 7. Serve: reloads, status updates and liveness probes on this one
	// loop, until a stop is requested.
	startFaults()
	d.serve(ctx, sigs)
	stopWatchdog()
	wdDone.Wait()

	// 8. Stop: STOPPING=1, stop intake, drain, stop adapters concurrently,
	// close state. Whatever happens, the stop ends within its bound and
	// returns nil: a stop is not a failure.
	d.stop()
	return nil
}

// serve runs the main loop until SIGTERM, SIGINT or ctx.
func (d *daemon) serve(ctx context.Context, sigs <-chan os.Signal) {
	statusTick := time.NewTicker(2 * time.Second)
	defer statusTick.Stop()
	mem := newMemReturner(d.shrinkStore)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = d.reload()
				continue
			}
			d.log.WithField("signal", sig.String()).Info("stop requested")
			return
		case <-ctx.Done():
			d.log.Info("stop requested by context")
			return
		case req := <-d.reloads:
			req.done <- d.reload()
		case reply := <-d.probes:
			close(reply)
		case <-d.board.changed:
			d.notifier.Status(d.statusLine())
		case <-statusTick.C:
			d.notifier.Status(d.statusLine())
			d.clusterTick()
			if d.disp == nil {
				continue
			}
			if st := d.disp.Stats(); mem.tick(st.Sessions, st.Turns) {
				d.log.Debug("the burst is over: returned free memory to the kernel")
			}
		}
	}
}

// stop is the bounded stop sequence.
func (d *daemon) stop() {
	close(d.stopping)
	d.haltNATS(false)
	cfg := d.cfg
	start := time.Now()
	bound := stopBound(cfg)
	if d.opts.OnStopping != nil {
		d.opts.OnStopping(bound)
	}
	st := d.disp.Stats()
	d.notifier.Stopping(fmt.Sprintf("stopping: draining %d turns, %ds left", st.TurnsInFlight, int(cfg.Shutdown.DrainTimeout.Seconds())))
	logging.Event(d.log, logging.MsgStopping).WithFields(logrus.Fields{
		"turns_in_flight": st.TurnsInFlight, "drain_timeout": cfg.Shutdown.DrainTimeout, "adapter_timeout": cfg.Shutdown.AdapterTimeout,
	}).Info("herald stopping")

	// Stop intake: finish the HTTP requests already accepted (their
	// messages are stored before they are answered), then refuse new
	// messages so platforms redeliver them to the next instance. Requests
	// still in the kernel backlog stay in systemd's socket for it too.
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
	defer cancelDrain()
	d.stopHTTP(drainCtx)
	d.stopAPI(drainCtx)
	d.disp.CloseIntake()

	// Drain turns in flight, telling systemd how long we need while work
	// remains, never past the bound.
	drained := make(chan error, 1)
	go func() { drained <- d.disp.Drain(drainCtx) }()
	tick := time.NewTicker(time.Second)
	var drainErr error
drain:
	for {
		select {
		case drainErr = <-drained:
			break drain
		case <-tick.C:
			st := d.disp.Stats()
			if st.TurnsInFlight+st.Sending == 0 {
				continue
			}
			left := time.Until(start.Add(cfg.Shutdown.DrainTimeout)).Round(time.Second)
			if left < 0 {
				left = 0
			}
			d.notifier.ExtendTimeout(time.Until(start.Add(bound)))
			d.notifier.Status(fmt.Sprintf("stopping: draining %d turns, %ds left", st.TurnsInFlight, int(left.Seconds())))
		}
	}
	tick.Stop()
	d.metrics.Drain(time.Since(start))
	if drainErr != nil {
		logging.Event(d.log, logging.MsgDrainTimedOut).WithError(drainErr).Warn("drain timed out; unfinished work stays pending for the next instance")
	} else {
		logging.Event(d.log, logging.MsgDrainFinished).WithField("took", time.Since(start).Round(time.Millisecond)).Info("drain finished")
	}

	// Cluster mode: leave the cluster. The coordinator stops this node's
	// partitions and the intakes of the platforms it holds, then releases
	// their leases, so other nodes take them over at once rather than
	// after cluster.lease_ttl. Bounded by adapter_timeout.
	ps := d.running()
	if d.clusterNode != nil {
		d.notifier.Status("stopping: leaving the cluster")
		ps = append(ps, d.clusterNode.close(cfg.Shutdown.AdapterTimeout)...)
	}

	// Stop every adapter at once, each bounded; one that overruns is
	// abandoned (named in the log), never waited for.
	d.notifier.Status("stopping: disconnecting platforms")
	d.stopPlatforms(ps, cfg.Shutdown.AdapterTimeout)

	d.stopAdmin()
	d.stopMetrics()
	logging.Event(d.log, logging.MsgStopped).WithField("took", time.Since(start).Round(time.Millisecond)).Info("herald stopped")
}

// stopBound is the longest the stop sequence takes: the drain, the
// adapters' stop, a small constant, and in cluster mode leaving the
// cluster (bounded like the adapters' stop, whose intakes it stops).
func stopBound(cfg *config.Config) time.Duration {
	bound := cfg.Shutdown.DrainTimeout + cfg.Shutdown.AdapterTimeout + stopSlack
	if cfg.Cluster.Enabled {
		bound += cfg.Shutdown.AdapterTimeout
	}
	return bound
}

// daemon is the state Run builds up; its methods are the steps of Run.
type daemon struct {
	opts     Options
	cfg      *config.Config
	logger   *logrus.Logger
	log      *logrus.Entry
	notifier *notify.Notifier
	metrics  *metrics.Metrics
	board    *board

	acts    *activation.Set
	httpLn  net.Listener
	adminLn net.Listener
	lock    *instance.Lock
	store   backend
	nats    *natsBackend // d.store with backend nats, else nil
	natsRun natsRunner
	disp    *dispatch.Dispatcher
	// cluster is the cluster mode's Coordinator (nil when cluster mode is
	// off), set before the main loop and the admin API start; clusterSeen
	// remembers since when leases have had no holder (clusterstatus.go).
	cluster     clusterSource
	clusterSeen unheldLeases
	// clusterNode is d.cluster's concrete value: nil without cluster mode.
	clusterNode *clusterNode

	httpSrv *http.Server
	httpMux *swapHandler
	// media is the media store, client and signer (nil before start).
	media     *dispatch.Media
	httpDone  chan struct{}
	conns     *connTracker
	adminSrv  *http.Server
	adminDone chan struct{}
	// The optional metrics listener (nil without herald-metrics.socket or
	// listen.metrics).
	metricsLn   net.Listener
	metricsSrv  *http.Server
	metricsDone chan struct{}
	api         *apiServer // nil without api.listen

	mu        sync.Mutex // guards platforms (read by the admin endpoint)
	platforms map[string]*platform

	reloads chan reloadRequest
	probes  chan chan struct{}
	// stopping is closed when the stop sequence begins.
	stopping      chan struct{}
	startedAt     time.Time
	lastReloadErr string // guarded by mu
	// journaled: stderr is the journal stream, where log events land.
	journaled bool
	// timeoutStop is the unit's TimeoutStopSec (0 if unknown): a stop
	// bound above it is logged at start, since systemd would SIGKILL
	// herald before it finished stopping unless it extends the timeout.
	timeoutStop time.Duration
}

func (d *daemon) isStopping() bool {
	select {
	case <-d.stopping:
		return true
	default:
		return false
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func describeConfig(c *config.Config) string {
	if c.File == "" {
		return "built-in default"
	}
	return c.File
}

// obtainListeners takes the sockets systemd passed (names "http" and
// "admin") or binds the configured fallbacks.
func (d *daemon) obtainListeners() error {
	acts, err := activation.Load(d.log)
	if err != nil {
		return err
	}
	d.acts = acts
	d.httpLn, _, err = acts.Listen("http", "tcp", d.cfg.Listen.HTTP)
	if err != nil {
		return err
	}
	d.adminLn, _, err = acts.Listen("admin", "unix", d.cfg.Admin.Socket)
	if err != nil {
		d.httpLn.Close()
		return err
	}
	if err := d.obtainMetricsListener(); err != nil {
		d.httpLn.Close()
		d.adminLn.Close()
		return err
	}
	for _, name := range acts.Unused() {
		d.log.WithField("name", name).Warn("systemd passed a socket herald does not use (FileDescriptorName= should be http, admin or metrics)")
	}
	return nil
}

func (d *daemon) closeListeners() {
	if d.httpLn != nil {
		d.httpLn.Close()
	}
	if d.adminLn != nil {
		d.adminLn.Close()
	}
	if d.metricsLn != nil {
		d.metricsLn.Close()
	}
	d.acts.Close()
}

// guardSingleInstance refuses to run beside another herald: under systemd it
// checks that the unit D-Bus reports for this process is really this
// process; started by hand it refuses while the unit is active; in every
// case it takes the state directory's kernel lock, which a SIGKILLed
// predecessor releases by dying.
func (d *daemon) guardSingleInstance(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	self, err := unitstate.Self(ctx, d.log)
	manual := self == nil
	switch {
	case errors.Is(err, unitstate.ErrNotSelf):
		// The environment names a unit this process is not the main
		// process of: a shell that inherited a service's environment, or a
		// wrapper in ExecStart=. Treat it as a manual start.
		d.log.WithError(err).Warn("this process is not its unit's main process; checking as a manual start")
		manual = true
	case err != nil:
		// D-Bus trouble must not keep a systemd-started herald down: the
		// kernel lock below still guarantees exclusion.
		d.log.WithError(err).Warn("cannot confirm this process's unit over D-Bus")
		manual = false
	case self != nil:
		// unitstate.Self logged "running as systemd unit" with the details.
		d.timeoutStop = self.TimeoutStop
	}
	if manual {
		if err := unitstate.CheckNotRunning(ctx, d.log, d.cfg.Unit); err != nil {
			var running *unitstate.RunningError
			if errors.As(err, &running) {
				return err
			}
			d.log.WithError(err).Debug("cannot ask systemd whether the unit runs")
		}
	}
	lock, err := instance.Acquire(d.cfg.StateDir)
	if err != nil {
		return err
	}
	d.lock = lock
	return nil
}

// startDispatch starts the dispatcher: it recovers the work left pending
// in the store and opens intake.
func (d *daemon) startDispatch(ctx context.Context) error {
	recovered, replies, err := d.disp.Start(ctx)
	if err != nil {
		return err
	}
	if recovered+replies > 0 {
		d.log.WithFields(logrus.Fields{"messages": recovered, "replies": replies}).Info("resuming work left by the previous instance")
	}
	return nil
}

func (d *daemon) closeStore() {
	d.haltNATS(true)
	if err := d.store.Close(); err != nil {
		d.log.WithError(err).Error("closing the message store")
	}
}

// alive is the watchdog's liveness check: the main loop and the dispatcher
// must both answer before ctx ends.
func (d *daemon) alive(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case d.probes <- reply:
	case <-ctx.Done():
		return errors.New("main loop did not take the liveness probe")
	}
	select {
	case <-reply:
	case <-ctx.Done():
		return errors.New("main loop did not answer the liveness probe")
	}
	return d.disp.Check(ctx)
}

// watchdogCheck is alive as the watchdog calls it: a check that fails or
// overruns its deadline withholds a keepalive, and is counted
// (herald_watchdog_checks_failed_total) so that near-misses show before
// systemd aborts herald.
func (d *daemon) watchdogCheck(ctx context.Context) error {
	err := d.alive(ctx)
	if err != nil || ctx.Err() != nil {
		d.metrics.WatchdogCheckFailed()
	}
	return err
}

// configError logs an invalid configuration (with its lifecycle event, in
// the journal when stderr is the journal) before the configured logger
// exists, and returns it as EX_CONFIG.
func configError(stderr *os.File, err error) error {
	if !logging.IsJournalStream(stderr) {
		// On a terminal main prints the error as it is, one located
		// problem per line.
		return exitErr(ExitConfig, err)
	}
	logger, lerr := logging.New("info", "journal", stderr)
	if lerr != nil {
		return exitErr(ExitConfig, err)
	}
	logging.Event(logger.WithField("component", "daemon"), logging.MsgConfigInvalid).WithError(err).Error("invalid configuration; herald does not start")
	return logged(ExitConfig, err)
}

// listenError maps a failure to obtain listeners to its exit code. Started
// by hand while herald.socket holds the port, or while another herald
// answers on the admin socket, it is a refused second instance, and says
// so rather than "address in use".
func (d *daemon) listenError(ctx context.Context, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rerr := unitstate.CheckNotRunning(ctx, d.log, d.cfg.Unit)
		cancel()
		var running *unitstate.RunningError
		if errors.As(rerr, &running) {
			logging.Event(d.log, logging.MsgInstanceRefused).Error(rerr.Error())
			return d.failed(ExitRunning, rerr)
		}
	}
	if errors.Is(err, activation.ErrInUse) {
		logging.Event(d.log, logging.MsgInstanceRefused).Error(err.Error())
		return d.failed(ExitRunning, err)
	}
	d.log.WithError(err).Error("cannot obtain listeners")
	return d.failed(ExitListen, err)
}

// failed returns err with its exit code, marked as already logged when the
// log went to the journal (main then does not print it again; on a terminal
// it prints the plain error, easier to read than the log line).
// storeFailed logs a message store that failed at start-up and returns the
// exit for it: ExitStoreCorrupt, which the unit never restarts
// (RestartPreventExitStatus=), only for a database that is actually
// damaged; any other failure (I/O, permissions, a full disk, a lock) is
// ExitStoreIO, which it restarts, since the next start may well succeed.
func (d *daemon) storeFailed(what string, err error) error {
	code := ExitStoreIO
	if store.IsCorrupt(err) {
		code = ExitStoreCorrupt
	}
	logging.Event(d.log, logging.MsgStoreError).WithError(err).WithField("exit_status", code).Error(what)
	return d.failed(code, err)
}

func (d *daemon) failed(code int, err error) error {
	return &ExitError{Code: code, Err: err, Logged: d.journaled}
}
