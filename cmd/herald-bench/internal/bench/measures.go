// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/paths"
)

// subject is a unit measured, with the herald configuration it runs with
// ("" for the floors).
type subject struct {
	label, unit, config, addr string
}

func (r *runner) heraldBench() subject {
	return subject{"herald (bench config: webhook + echo)", "herald.service", heraldConf{}.render(), heraldAddr}
}

func (r *runner) heraldPackaged() subject {
	return subject{"herald (packaged herald.yaml: no platform enabled)", "herald.service", r.packaged, heraldAddr}
}

var (
	floorSubject = subject{"floor (unit derived from herald.service)", "floor.service", "", floorAddr}
	bareSubject  = subject{"bare floor (no sandboxing, no user)", "floor-bare.service", "", bareAddr}
)

// prepare installs the subject's configuration (herald), stops it and
// clears start limits.
func (r *runner) prepare(ctx context.Context, s subject, fresh bool) error {
	if s.config != "" {
		return r.e.configure(ctx, s.config, fresh)
	}
	if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
		return err
	}
	r.e.mgr.resetFailed(ctx, s.unit, strings.TrimSuffix(s.unit, ".service")+".socket")
	return nil
}

// 1. Start to READY.
func (r *runner) startReady(ctx context.Context) error {
	subjects := []subject{r.heraldPackaged(), r.heraldBench(), floorSubject, bareSubject}
	ready := map[string]Summary{}
	jobs := map[string]Summary{}
	for _, s := range subjects {
		if err := r.prepare(ctx, s, false); err != nil {
			return err
		}
		var s2r, job []time.Duration
		for i := -1; i < r.plan.startReps; i++ { // i = -1: warm-up, not recorded
			if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
				return err
			}
			d, err := r.e.mgr.start(ctx, s.unit)
			if err != nil {
				return err
			}
			rd, err := r.e.mgr.startToReady(ctx, s.unit)
			if err != nil {
				return err
			}
			if i >= 0 {
				s2r = append(s2r, rd)
				job = append(job, d)
			}
		}
		if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
			return err
		}
		ready[s.label] = Summarize(Seconds(s2r))
		jobs[s.label] = Summarize(Seconds(job))
		r.logf("  %s: READY after %s (median)", s.label, ms(ready[s.label].Median))
	}
	floor := ready[floorSubject.label]
	t := Table{Header: []string{"Unit", "n", "median", "min–max", "p99", "herald/floor (median)", "`start` job, median"}}
	for _, s := range subjects {
		row := append([]string{s.label}, durRow(ready[s.label])...)
		rt := "–"
		if s.unit == "herald.service" || s.unit == "floor-bare.service" {
			rt = ratio(Ratio(ready[s.label].Median, floor.Median))
		}
		row = append(row, rt, ms(jobs[s.label].Median))
		t.Rows = append(t.Rows, row)
	}
	r.rep.Add("Start to READY",
		Para(fmt.Sprintf(`From the fork of the main process to READY=1, as systemd records it:
ActiveEnterTimestampMonotonic − ExecMainStartTimestampMonotonic of each run (systemd stamps
ExecMainStart in the parent right after the fork, so the time the kernel and systemd spend
setting up the unit's sandbox is inside the interval). %d starts per unit after one warm-up
start; the service is stopped before each start and its socket stays active. The floor's unit
is herald.service with ExecStart= (and the socket and directory names) replaced, so both pay for
the same hardening, credentials and user; the bare floor shows what that set-up costs. The last
column is the wall time of the whole start job (what `+"`systemctl start`"+` waits for).`, r.plan.startReps)),
		t)
	r.goals = append(r.goals, because(goalStartReady(ready[r.heraldPackaged().label], floor), startReason))
	// The bench config is the one the other measures use; judge it too.
	g := because(goalStartReady(ready[r.heraldBench().label], floor), startReason)
	g.Name += " (bench config)"
	r.goals = append(r.goals, g)
	return nil
}

// 6a. Idle memory, per unit, fresh starts.
func (r *runner) idleMemory(ctx context.Context) error {
	subjects := []subject{r.heraldPackaged(), r.heraldBench(), floorSubject, bareSubject}
	t := Table{Header: []string{"Unit", "n", "VmRSS median", "VmRSS min–max", "RssAnon median", "RssFile + RssShmem median", "MemoryCurrent median"}}
	var heraldIdle, floorIdle Summary
	for _, s := range subjects {
		if err := r.prepare(ctx, s, false); err != nil {
			return err
		}
		var rss, anon, file, cg []float64
		for range r.plan.rssReps {
			if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
				return err
			}
			if _, err := r.e.mgr.start(ctx, s.unit); err != nil {
				return err
			}
			if err := pause(ctx, 2*time.Second); err != nil {
				return err
			}
			m, err := r.e.memoryOf(ctx, s.unit)
			if err != nil {
				return err
			}
			rss, anon, file = append(rss, m.VmRSS), append(anon, m.RssAnon), append(file, m.RssFile+m.RssShmem)
			if !math.IsNaN(m.Cgroup) {
				cg = append(cg, m.Cgroup)
			}
		}
		if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
			return err
		}
		sr := Summarize(rss)
		switch s.label {
		case r.heraldPackaged().label:
			heraldIdle = sr
		case floorSubject.label:
			floorIdle = sr
		}
		cgs := "not available (no memory controller in the sandbox's cgroup)"
		if len(cg) > 0 {
			cgs = mib(Summarize(cg).Median)
		}
		t.Rows = append(t.Rows, []string{s.label, fmt.Sprint(sr.N), mib(sr.Median),
			strings.TrimSuffix(mib(sr.Min), " MiB") + "–" + mib(sr.Max),
			mib(Summarize(anon).Median), mib(Summarize(file).Median), cgs})
		r.logf("  %s: idle VmRSS %s", s.label, mib(sr.Median))
	}
	r.memIdle = t
	r.goals = append(r.goals, goalIdleRSS(heraldIdle, floorIdle))
	return nil
}

// 2. Restart, idle.
func (r *runner) restartIdle(ctx context.Context) error {
	subjects := []subject{r.heraldBench(), floorSubject, bareSubject}
	res := map[string]Summary{}
	cli := map[string]Summary{}
	for _, s := range subjects {
		if err := r.prepare(ctx, s, false); err != nil {
			return err
		}
		if _, err := r.e.mgr.start(ctx, s.unit); err != nil {
			return err
		}
		var ds []time.Duration
		for i := -1; i < r.plan.restartReps; i++ {
			d, err := r.e.mgr.restart(ctx, s.unit)
			if err != nil {
				return err
			}
			if i >= 0 {
				ds = append(ds, d)
			}
		}
		res[s.label] = Summarize(Seconds(ds))
		// The same through the command line, as an operator runs it.
		var cs []time.Duration
		for range r.plan.cliReps {
			t0 := time.Now()
			if _, err := r.e.run(ctx, "systemctl", "restart", s.unit); err != nil {
				return err
			}
			cs = append(cs, time.Since(t0))
		}
		cli[s.label] = Summarize(Seconds(cs))
		if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
			return err
		}
		r.e.mgr.resetFailed(ctx, s.unit)
		r.logf("  %s: restart %s (median)", s.label, ms(res[s.label].Median))
	}
	// What forking nsenter + systemctl costs by itself.
	var noop []time.Duration
	for range r.plan.cliReps {
		t0 := time.Now()
		if _, err := r.e.run(ctx, "systemctl", "show", "-p", "Id", "floor.service"); err != nil {
			return err
		}
		noop = append(noop, time.Since(t0))
	}
	floor := res[floorSubject.label]
	t := Table{Header: []string{"Unit", "n", "median", "min–max", "p99", "herald/floor (median)", "`systemctl restart` CLI, median (n)"}}
	for _, s := range subjects {
		row := append([]string{s.label}, durRow(res[s.label])...)
		rt := "–"
		if s.unit != "floor.service" {
			rt = ratio(Ratio(res[s.label].Median, floor.Median))
		}
		t.Rows = append(t.Rows, append(row, rt, fmt.Sprintf("%s (%d)", ms(cli[s.label].Median), cli[s.label].N)))
	}
	r.rep.Add("Restart (idle)",
		Para(fmt.Sprintf(`Wall time of a restart job on the running, idle service: from the D-Bus RestartUnit
call (over the sandbox's system bus) to the job's end (the JobRemoved signal `+"`systemctl restart`"+` waits
for: the old process has exited and the new one sent READY=1). %d restarts after one warm-up.
The last column runs `+"`systemctl restart`"+` itself through nsenter; a no-op `+"`systemctl show`"+`
the same way takes %s (median), which is the command-line overhead in that column.`,
			r.plan.restartReps, ms(Summarize(Seconds(noop)).Median))),
		t)
	r.goals = append(r.goals, because(goalRestart(res[r.heraldBench().label], floor), "a restart is a stop (herald's, from SIGTERM to exit, takes about a millisecond when idle) and a start: "+startReason))
	return nil
}

// testBuildDropIn runs herald's test build (go build -tags heraldtest: the
// production code plus the fault platform) in herald's own unit.
const testBuildDropIn = `[Service]
ExecStart=
ExecStart=/usr/bin/herald-test run --config ` + paths.ConfigFile + `
`

// 3. Stop with a hung adapter.
func (r *runner) hungStop(ctx context.Context) error {
	const adapterTimeout = time.Second
	// Both rows run the test build, the only one with the fault platform.
	if err := r.e.dropIn(ctx, "herald.service", testBuildDropIn); err != nil {
		return err
	}
	defer func() {
		_ = r.e.dropIn(context.Background(), "herald.service", "") // on an error path
	}()
	rows := []struct {
		label string
		conf  heraldConf
	}{
		{"herald, hung fault platform", heraldConf{AdapterTimeout: adapterTimeout, Stuck: true}},
		{"herald, same config without it", heraldConf{AdapterTimeout: adapterTimeout}},
	}
	t := Table{Header: []string{"Configuration", "n", "median", "min–max", "p99", "max − adapter_timeout", "unit Result"}}
	var hung, plain Summary
	for i, row := range rows {
		if err := r.e.configure(ctx, row.conf.render(), false); err != nil {
			return err
		}
		var ds []time.Duration
		results := map[string]int{}
		for range r.plan.hungReps {
			if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
				return err
			}
			// Let the adapters start (the fault platform reports connected
			// at once) before asking for the stop.
			if err := pause(ctx, 300*time.Millisecond); err != nil {
				return err
			}
			d, err := r.e.mgr.stop(ctx, "herald.service")
			if err != nil {
				return err
			}
			ds = append(ds, d)
			res, _ := r.e.mgr.strProp(ctx, "herald.service", "Service", "Result")
			results[res]++
		}
		s := Summarize(Seconds(ds))
		if i == 0 {
			hung = s
		} else {
			plain = s
		}
		var rs []string
		for k, v := range results {
			rs = append(rs, fmt.Sprintf("%s ×%d", k, v))
		}
		sort.Strings(rs)
		over := "–"
		if i == 0 {
			over = fmt.Sprintf("%+.0f ms", (s.Max-adapterTimeout.Seconds())*1000)
		}
		t.Rows = append(t.Rows, append(append([]string{row.label}, durRow(s)...), over, strings.Join(rs, ", ")))
		r.logf("  %s: stop %s (median), max %s", row.label, ms(s.Median), ms(s.Max))
	}
	r.rep.Add("Stop with a hung adapter",
		Para(fmt.Sprintf(`The hidden fault platform `+"`stuck: {type: fault, allow_all: true, hang_stop: true}`"+`
has a Stop that blocks forever and ignores its context. It exists only in herald's test build
(`+"`go build -tags heraldtest`"+`), which both rows run. herald must abandon it after
`+"`shutdown.adapter_timeout`"+` (%v here) and exit. Wall time of the stop job (D-Bus StopUnit to
the job's end: the main process has exited and systemd has cleaned up), %d stops, each after a
fresh start. Goal: every stop within adapter_timeout + 100 ms + the slowest stop of the same
configuration without the hung adapter.`, adapterTimeout, r.plan.hungReps)),
		t)
	r.goals = append(r.goals, goalHungStop(hung, plain, adapterTimeout))
	if err := r.e.configure(ctx, heraldConf{}.render(), true); err != nil {
		return err
	}
	// The measures after this one run the production binary again.
	return r.e.dropIn(ctx, "herald.service", "")
}

// floorGrace is the keep-alive grace of the floor variant that stops with
// Connection: close instead of closing idle connections at once.
const floorGrace = 250 * time.Millisecond

var floorGraceDropIn = fmt.Sprintf(`[Service]
ExecStart=
ExecStart=/usr/bin/herald-floor -reply-url %s -drain-grace %v
`, receiverURL, floorGrace)

// 4. Restart under load.
func (r *runner) restartUnderLoad(ctx context.Context) error {
	const senders = 8
	t := Table{Header: []string{"Unit", "Phase", "requests", "failed", "p50", "p99", "max", "restart job median (max)"}}
	var notes []string
	var heraldFailed, heraldTotal int
	graceful := floorSubject
	graceful.label = fmt.Sprintf("floor, stopping with Connection: close + %v grace", floorGrace)
	idem := r.heraldBench()
	idem.label = "herald, client sending Idempotency-Key (Go retries on a broken connection)"
	for _, s := range []subject{r.heraldBench(), idem, floorSubject, graceful} {
		if s.label == graceful.label {
			if err := r.e.dropIn(ctx, s.unit, floorGraceDropIn); err != nil {
				return err
			}
		}
		if err := r.prepare(ctx, s, true); err != nil {
			return err
		}
		if _, err := r.e.mgr.start(ctx, s.unit); err != nil {
			return err
		}
		r.e.trk.reset()
		prefix := fmt.Sprintf("rl-%s-%d", strings.TrimSuffix(s.unit, ".service"), time.Now().UnixNano())
		snd := r.e.sender(s.addr, prefix)
		useIdem := s.label == idem.label
		base := snd.run(ctx, loadSpec{Senders: senders, Convs: 8, Duration: r.plan.loadBaseline, IdempotencyKey: useIdem})

		lctx, stopLoad := context.WithCancel(ctx)
		done := make(chan *loadResult, 1)
		go func() { done <- snd.run(lctx, loadSpec{Senders: senders, Convs: 8, IdempotencyKey: useIdem}) }()
		var restarts []time.Duration
		var rerr error
		if rerr = pause(ctx, time.Second); rerr == nil {
			for range r.plan.loadRestarts {
				d, err := r.e.mgr.restart(ctx, s.unit)
				if err != nil {
					rerr = err
					break
				}
				restarts = append(restarts, d)
				if rerr = pause(ctx, 300*time.Millisecond); rerr != nil {
					break
				}
			}
		}
		if rerr == nil {
			rerr = pause(ctx, time.Second)
		}
		stopLoad()
		under := <-done
		if rerr != nil {
			return rerr
		}
		rs := Summarize(Seconds(restarts))
		for _, ph := range []struct {
			name string
			res  *loadResult
			rst  string
		}{
			{"no restarts", base, "–"},
			{fmt.Sprintf("%d restarts", len(restarts)), under, fmt.Sprintf("%s (%s)", ms(rs.Median), ms(rs.Max))},
		} {
			ls := Summarize(Seconds(ph.res.PostLat))
			t.Rows = append(t.Rows, []string{s.label, ph.name, fmt.Sprint(ph.res.Sent), fmt.Sprint(ph.res.Failed),
				ms(ls.P50), ms(ls.P99), ms(ls.Max), ph.rst})
			if ph.res.Failed > 0 {
				var kinds []string
				for k, v := range ph.res.FailKinds {
					kinds = append(kinds, fmt.Sprintf("%d × %s", v, k))
				}
				sort.Strings(kinds)
				notes = append(notes, fmt.Sprintf("%s, %s: failures: %s.", s.label, ph.name, strings.Join(kinds, "; ")))
			}
		}
		if s.label == r.heraldBench().label {
			heraldFailed, heraldTotal = under.Failed, under.Sent
		}
		// Every accepted message must get its reply, once per key: herald
		// stores before answering 202 and redelivers after a restart.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		all := r.e.trk.waitReplies(wctx)
		cancel()
		replied, dup, missing, failedAnswered := r.e.trk.replyCounts()
		waited := "within 30 s of the end of the load"
		if !all {
			waited = "after waiting 30 s"
		}
		note := fmt.Sprintf("%s: of %d messages answered 202 (both phases), %d got a reply %s, %d got none, %d got more than one (same Idempotency-Key, so a receiver drops them).",
			s.label, base.Accepted+under.Accepted, replied, waited, missing, dup)
		if f := base.Failed + under.Failed; f > 0 {
			note += fmt.Sprintf(" Of the %d failed requests, %d had nevertheless been stored: their replies arrived, and a sender's retry of them would be a duplicate, absorbed by deduplication on the delivery id.", f, failedAnswered)
		}
		notes = append(notes, note)
		r.logf("  %s: %d of %d requests failed during %d restarts", s.label, under.Failed, under.Sent, len(restarts))
		if _, err := r.e.mgr.stop(ctx, s.unit); err != nil {
			return err
		}
		r.e.mgr.resetFailed(ctx, s.unit)
		if s.label == graceful.label {
			if err := r.e.dropIn(ctx, s.unit, ""); err != nil {
				return err
			}
		}
	}
	r.rep.Add("Restart under load",
		Para(fmt.Sprintf(`%d senders in the sandbox's network namespace POST webhook messages back to back
(keep-alive connections, each waiting for its answer, no retries; the delivery id goes in `+"`webhook-id`"+`,
because Go's client would silently retry a request carrying Idempotency-Key on a broken connection).
First %v without restarts, then %d restart jobs 300 ms apart while the load runs. A request fails
when it gets no answer or an answer other than 202. Latency is from sending the POST to its
answer. The second herald row sends the delivery id as Idempotency-Key instead, which Go's
client treats as safe to retry by itself. The floor runs the same load with the same drain logic
as herald had before the keep-alive fix (no keep-alive, close the listener, wait for open
connections, Shutdown). The last floor runs the alternative the findings recommend: from SIGTERM on, every
answer carries `+"`Connection: close`"+` and idle keep-alive connections get %v to carry one more
request before the rest are closed.`,
			senders, r.plan.loadBaseline, r.plan.loadRestarts, floorGrace)),
		t, List(notes))
	r.goals = append(r.goals, goalNoFailures(heraldFailed, heraldTotal))
	return nil
}

// durableDropIn makes floor.service the durable relay: every message is
// committed to SQLite (synchronous=sync, on the host's disk like herald's
// store) before its 202, and marked delivered after its echo arrived.
func durableDropIn(sync string) string {
	return fmt.Sprintf(`[Service]
ExecStart=
ExecStart=/usr/bin/herald-floor -reply-url %s -durable %s/relay.db -sync %s
`, receiverURL, floorStateGuest, sync)
}

// The closed loop of the throughput measures: senders, each with convs
// conversations of its own.
const senders, convs = 64, 16

// loopResult is one subject's window of the closed loop.
type loopResult struct {
	res       *loadResult
	rate      float64 // replies per second in the window
	e2e, post Summary // end-to-end and POST→202 latencies
	cpu       cpuUsage
	cpuPerMsg float64 // CPU seconds of the subject's main process per reply
	writes    perMsg  // the subject's writes per reply
	// benchFlushes are the device flushes of the bench process per reply:
	// those of the NATS servers it runs.
	benchFlushes float64
}

// closedLoop runs the throughput load on a started subject: a warm-up, then
// the window, with the CPU, write and flush counters read around it.
// durable says the subject is the durable relay (its own counters);
// ownFlushes counts the bench process's flushes too (the NATS servers it
// runs), else benchFlushes is NaN.
func (r *runner) closedLoop(ctx context.Context, s subject, durable, ownFlushes bool) (loopResult, error) {
	var w loopResult
	r.e.trk.reset()
	snd := r.e.sender(s.addr, fmt.Sprintf("tp-%d", time.Now().UnixNano()))
	spec := loadSpec{Senders: senders, Convs: convs, WaitReply: true, ReplyTimeout: 10 * time.Second, Duration: r.plan.warmup}
	snd.run(ctx, spec)
	spec.Duration = r.plan.window
	c0, err := r.e.cpuSnap(ctx, s.unit)
	if err != nil {
		return w, err
	}
	w0, err := r.e.counters(ctx, s, durable)
	if err != nil {
		return w, err
	}
	flushes := r.e.countFlushes(ctx, s.unit, r.plan.window)
	own := &flushCounter{}
	if ownFlushes {
		own = r.e.countFlushesOf(ctx, os.Getpid(), r.plan.window)
	}
	w.res = snd.run(ctx, spec)
	nFlush, nOwn := flushes.wait(), own.wait()
	c1, err := r.e.cpuSnap(ctx, s.unit)
	if err != nil {
		return w, err
	}
	w1, err := r.e.counters(ctx, s, durable)
	if err != nil {
		return w, err
	}
	w.cpu = c0.to(c1)
	w.cpuPerMsg, w.benchFlushes = math.NaN(), math.NaN()
	if w.res.Completed > 0 {
		w.cpuPerMsg = w.cpu.Unit / float64(w.res.Completed)
		w.benchFlushes = nOwn / float64(w.res.Completed)
	}
	w.writes = w0.perMsg(w1, nFlush, w.res.Completed)
	w.rate = float64(w.res.Completed) / w.res.Elapsed.Seconds()
	w.e2e, w.post = Summarize(Seconds(w.res.E2ELat)), Summarize(Seconds(w.res.PostLat))
	return w, nil
}

// 5. Throughput and overhead.
func (r *runner) throughput(ctx context.Context) error {
	type variant struct {
		s       subject
		label   string
		dropIn  string // for floor.service
		durable bool
	}
	full := r.heraldBench()
	full.config = heraldConf{Sync: "full"}.render()
	normal := r.heraldBench()
	normal.config = heraldConf{Sync: "normal"}.render()
	const (
		fullLabel    = "herald, store.sync: full"
		normalLabel  = "herald, store.sync: normal"
		durableLabel = "durable relay (floor + SQLite, synchronous=FULL)"
		plainLabel   = "plain net/http relay (floor, no store)"
	)
	variants := []variant{
		{s: full, label: fullLabel},
		{s: normal, label: normalLabel},
		{s: floorSubject, label: durableLabel, dropIn: durableDropIn("FULL"), durable: true},
		{s: floorSubject, label: plainLabel},
	}
	t := Table{Header: []string{"Subject", "msgs/s", "end-to-end p50", "p99", "max", "POST→202 p50", "POST→202 p99", "late replies", "failed"}}
	cpuT := Table{Header: []string{"Subject", "subject CPU per message", "subject cores busy", "bench process cores busy", "machine busy"}}
	wrT := Table{Header: []string{"Subject", "commits", "SQL statements", "device flushes (fdatasync + fsync)", "bytes written", "messages per commit"}}
	e2e := map[string]Summary{}
	rates := map[string]float64{}
	cpuPer := map[string]float64{}
	writes := map[string]perMsg{}
	for _, v := range variants {
		if v.dropIn != "" {
			if err := r.e.dropIn(ctx, v.s.unit, v.dropIn); err != nil {
				return err
			}
			if err := emptyDir(r.e.floorState); err != nil {
				return err
			}
		}
		if err := r.prepare(ctx, v.s, true); err != nil {
			return err
		}
		if _, err := r.e.mgr.start(ctx, v.s.unit); err != nil {
			return err
		}
		w, err := r.closedLoop(ctx, v.s, v.durable, false)
		if err != nil {
			return err
		}
		cpuPer[v.label] = w.cpuPerMsg
		cpuT.Rows = append(cpuT.Rows, []string{v.label, fmt.Sprintf("%.0f µs", w.cpuPerMsg*1e6), fmt.Sprintf("%.2f", w.cpu.UnitCores),
			fmt.Sprintf("%.2f", w.cpu.BenchCores), fmt.Sprintf("%.0f%%", w.cpu.MachineBusy*100)})
		pm := w.writes
		writes[v.label] = pm
		wrT.Rows = append(wrT.Rows, []string{v.label, num(pm.Commits, 3), num(pm.Statements, 2), num(pm.Flushes, 3),
			kb(pm.Bytes), perCommit(pm)})
		e2e[v.label] = w.e2e
		rates[v.label] = w.rate
		t.Rows = append(t.Rows, []string{v.label, rate(w.rate), ms(w.e2e.P50), ms(w.e2e.P99), ms(w.e2e.Max), ms(w.post.P50), ms(w.post.P99),
			fmt.Sprint(w.res.Late), fmt.Sprint(w.res.Failed)})
		r.logf("  %s: %s, end-to-end p50 %s p99 %s, CPU %.0f µs/msg, %s commits, %s statements, %s flushes, %s per message",
			v.label, rate(w.rate), ms(w.e2e.P50), ms(w.e2e.P99), w.cpuPerMsg*1e6, num(pm.Commits, 3), num(pm.Statements, 2), num(pm.Flushes, 3), kb(pm.Bytes))
		if _, err := r.e.mgr.stop(ctx, v.s.unit); err != nil {
			return err
		}
		if v.dropIn != "" {
			if err := r.e.dropIn(ctx, v.s.unit, ""); err != nil {
				return err
			}
		}
	}
	dl := e2e[durableLabel]
	added := Table{Header: []string{"herald variant", "added p50 (to the durable relay)", "added p99", "msgs/s herald/durable relay", "CPU per message herald/durable relay", "msgs/s herald/plain relay"}}
	for _, v := range variants[:2] {
		h := e2e[v.label]
		added.Rows = append(added.Rows, []string{v.label, ms(h.P50 - dl.P50), ms(h.P99 - dl.P99),
			ratio(Ratio(rates[v.label], rates[durableLabel])), ratio(Ratio(cpuPer[v.label], cpuPer[durableLabel])),
			ratio(Ratio(rates[v.label], rates[plainLabel]))})
	}

	// Intake alone: senders do not wait for replies, so herald's pipeline
	// falls behind and what is measured is the rate of durable 202s.
	if err := r.prepare(ctx, full, true); err != nil {
		return err
	}
	if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
		return err
	}
	r.e.trk.reset()
	snd := r.e.sender(heraldAddr, fmt.Sprintf("in-%d", time.Now().UnixNano()))
	in := snd.run(ctx, loadSpec{Senders: senders, Convs: convs, Duration: r.plan.intake})
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	drained := r.e.trk.waitReplies(wctx)
	cancel()
	backlog := time.Since(t0)
	ps := Summarize(Seconds(in.PostLat))
	intake := fmt.Sprintf(`**Intake alone** (herald, sync full, %d senders not waiting for replies, %v): %s
durable 202 answers (POST→202 p50 %s, p99 %s, %d failed). The replies for all %d accepted
messages then took another %s to arrive%s, i.e. the whole pipeline completed %s.`,
		senders, r.plan.intake, rate(float64(in.Accepted)/in.Elapsed.Seconds()), ms(ps.P50), ms(ps.P99), in.Failed,
		in.Accepted, backlog.Round(10*time.Millisecond), map[bool]string{true: "", false: " (not all arrived within 2 min)"}[drained],
		rate(float64(in.Accepted)/(in.Elapsed+backlog).Seconds()))
	if _, err := r.e.mgr.stop(ctx, "herald.service"); err != nil {
		return err
	}

	r.rep.Add("Throughput and overhead",
		Para(fmt.Sprintf(`%d senders, each with %d conversations of its own (%d sessions), in a closed loop over
the whole pipeline: POST a webhook message, wait for the 202, wait for the reply to reach the
receiver (herald: inbound → SQLite store → echo agent → outbox → webhook delivery to reply_url),
then send the next. msgs/s counts replies received during the %v window after a %v warm-up;
end-to-end latency runs from sending the POST to the reply arriving at the receiver. The
durable relay is the floor for herald's promise: the same program as the plain relay, but it
commits each message to SQLite before the 202 (one insert, deduplicated on the delivery id,
group commit, WAL, synchronous=FULL, fdatasync: herald's settings, on the same disk) and marks it
delivered in one batched update after the echo reached the receiver. The plain net/http relay
does the same HTTP work and stores nothing: it answers 202 at once and POSTs the echo to the
receiver. herald's goals are ratios to the durable relay; the plain relay is a second
reference. The load generator and the receiver run on the same %s cores as the subject, and
the machine may be busy with other work: only ratios within this run mean something.`,
			senders, convs, senders*convs, r.plan.window, r.plan.warmup, r.rep.cores())),
		t,
		Para(`CPU during the same windows (utime+stime of the main process from /proc, the bench
process's own rusage, and the whole machine from /proc/stat; idle and iowait count as not busy):`),
		cpuT,
		Para(`Writes per message during the same windows: commits and SQL statements as the subject
counts them (herald: herald_store_commit_batch_size_count and herald_store_statements_total of
/metrics; the durable relay: its own counters; BEGIN and COMMIT are statements), device flushes
(fdatasync and fsync calls of the process, counted by the kernel with perf stat), and bytes the
process wrote to the storage layer (write_bytes of /proc/<pid>/io):`),
		wrT,
		Para("herald against the floors (differences of the end-to-end quantiles, ratios of rates and CPU):"),
		added,
		Para(intake))
	r.goals = append(r.goals,
		goalThroughput(rates[fullLabel], rates[durableLabel], rates[plainLabel], r.rep.coreCount(), writeReason(writes[fullLabel], writes[durableLabel])),
		goalCPU(cpuPer[fullLabel], cpuPer[durableLabel], writeReason(writes[fullLabel], writes[durableLabel])),
		goalSyncNormal(rates[normalLabel], rates[fullLabel], fmt.Sprintf("end-to-end p50 %s against %s, CPU per message %.0f µs against %.0f µs; %s",
			ms(e2e[normalLabel].P50), ms(e2e[fullLabel].P50), cpuPer[normalLabel]*1e6, cpuPer[fullLabel]*1e6, writeReason(writes[normalLabel], writes[fullLabel]))))
	return nil
}

// 6b. Memory with many sessions.
func (r *runner) sessionsMemory(ctx context.Context) error {
	n := r.plan.sessions
	const senders = 64
	idx := len(r.rep.Sections)
	r.rep.Add("Memory",
		Para(`Idle: each unit started fresh, VmRSS of its main process from /proc/<MainPID>/status
2 s after READY=1, split into anonymous memory (heap, stacks: what the program allocated) and
file-backed pages (mostly the executable's own code and data; the binaries are installed in the
sandbox's RAM overlay, so the kernel counts those pages as RssShmem rather than RssFile), and the
unit's MemoryCurrent (cgroup) where the sandbox has a memory controller.`),
		r.memIdle)
	t := Table{Header: []string{"Scenario", "herald status after", "VmRSS before", "VmRSS after", "Δ VmRSS", "Δ per session", "Δ RssAnon per session", "MemoryCurrent after", "VmRSS a minute after (RssAnon)"}}
	scenarios := []struct {
		label string
		conf  heraldConf
		wait  bool
	}{
		{fmt.Sprintf("%d sessions, one message each, all answered", n), heraldConf{}, true},
		{fmt.Sprintf("%d sessions, each with a turn running or queued (echo word_delay 30s)", n), heraldConf{WordDelay: 30 * time.Second, DrainTimeout: time.Second}, false},
	}
	for _, sc := range scenarios {
		if err := r.e.configure(ctx, sc.conf.render(), true); err != nil {
			return err
		}
		if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
			return err
		}
		if err := pause(ctx, 2*time.Second); err != nil {
			return err
		}
		before, err := r.e.memoryOf(ctx, "herald.service")
		if err != nil {
			return err
		}
		r.e.trk.reset()
		snd := r.e.sender(heraldAddr, fmt.Sprintf("mem-%d", time.Now().UnixNano()))
		// Each sender's conversations never repeat: n distinct sessions.
		res := snd.run(ctx, loadSpec{Senders: senders, Convs: n, Count: n})
		if res.Failed > 0 {
			return fmt.Errorf("%d of %d messages failed", res.Failed, res.Sent)
		}
		var answered time.Time
		if sc.wait {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			ok := r.e.trk.waitReplies(wctx)
			cancel()
			if !ok {
				_, _, missing, _ := r.e.trk.replyCounts()
				return fmt.Errorf("%d replies missing after 2 minutes", missing)
			}
			answered = time.Now()
		}
		if err := pause(ctx, 3*time.Second); err != nil {
			return err
		}
		after, err := r.e.memoryOf(ctx, "herald.service")
		if err != nil {
			return err
		}
		st, err := r.e.adminStatus(ctx)
		status := "?"
		if err == nil {
			status = fmt.Sprintf("%v sessions, %v turns running, %v queued", st["sessions"], st["turns_in_flight"], st["queue_depth"])
		}
		d := after.VmRSS - before.VmRSS
		da := after.RssAnon - before.RssAnon
		later := "–"
		if sc.wait {
			if err := pause(ctx, time.Until(answered.Add(time.Minute))); err != nil {
				return err
			}
			m, err := r.e.memoryOf(ctx, "herald.service")
			if err != nil {
				return err
			}
			later = fmt.Sprintf("%s (%s)", mib(m.VmRSS), mib(m.RssAnon))
			why := fmt.Sprintf("of the %s above idle, %s anonymous: %s", mib(m.VmRSS-before.VmRSS), mib(m.RssAnon-before.RssAnon), burstMemoryReason)
			r.goals = append(r.goals, goalBurstRSS(before.VmRSS, m.VmRSS, n, why))
			r.logf("  a minute after the last reply: VmRSS %s", later)
		}
		t.Rows = append(t.Rows, []string{sc.label, status, mib(before.VmRSS), mib(after.VmRSS), mib(d),
			fmt.Sprintf("%.2f KiB", d/float64(n)/1024), fmt.Sprintf("%.2f KiB", da/float64(n)/1024), mib(after.Cgroup), later})
		r.logf("  %s: %s → %s (%s)", sc.label, mib(before.VmRSS), mib(after.VmRSS), status)
	}
	if err := r.e.configure(ctx, heraldConf{}.render(), true); err != nil {
		return err
	}
	r.rep.Sections[idx].Blocks = append(r.rep.Sections[idx].Blocks,
		Para(fmt.Sprintf(`With %d sessions: %d distinct conversation ids each send one message (64 senders),
measured 3 s after the last 202 (and, in the first row, after the last reply), and in the
first row again a minute after the last reply (the goal: within 5 MiB of idle). herald's
dispatcher forgets a session as soon as it has no turn, queue or undelivered reply, so in the
first row no session is active any more when RSS is read: the growth is heap the Go runtime
has not returned to the kernel plus SQLite's page cache, not per-session state. The second row
keeps every session active: a slow echo agent (30 s between words) holds max_concurrent_turns
(64) turns running and every other session's message queued in memory, which is the state an
active session costs. "herald status" is the admin endpoint's /status.`, n, n)),
		t)
	return nil
}

// startReason is where herald's start-up spends the time the floor does
// not, from timestamps taken at each step of herald.Run in a test build
// under this bench (median of 74 starts, in the bench's sandbox on the
// 2-core machine of BENCHMARKS.md): about 9.5 ms from main to READY=1, of
// which 3.5 ms asking systemd over D-Bus whether this process is its unit's
// main process (one connection, seven properties; it was 11 ms with
// go-systemd's two connections and GetAll), 2.7 ms opening the store
// (SQLite parses the schema on each connection, the integrity check, the
// prepared statements) and under 1 ms each for the rest. The remainder is
// exec and Go start-up of a 17 MB binary (package initialisation about
// 3 ms), against the floor's 11 MB.
const startReason = "herald's own start-up (main to READY=1) is about 10 ms: asking systemd over D-Bus whether this process is its unit's main process, opening and checking the SQLite store, then the listeners and adapters; the rest is exec and Go start-up of a larger binary than the floor's"

// burstMemoryReason is why herald's memory stays above idle after a burst,
// from a test build under this bench that counted modernc.org/libc's
// mappings and wrote Go heap profiles. SQLite's share: herald's SQLite is
// modernc.org/sqlite, whose malloc is modernc.org/libc's allocator
// (modernc.org/memory). It takes memory from the kernel in 64 KiB regions
// and keeps a region it no longer uses mapped and resident for reuse, up to
// 4 MiB of them per region size (it decommits only beyond that), and
// modernc.org/libc has no call that trims it. PRAGMA shrink_memory and
// closing the idle read connections therefore return the page caches,
// connections and statements to that allocator, not to the kernel: its
// mappings grew from 4.1 MiB idle to 6.1–7.1 MiB in the 10,000-session
// burst and stayed there after herald released its memory. The Go heap's
// share is fragmentation, not live data: after the release about 0.8 MB
// was live in about 4 MiB of spans still in use (a span with one live
// object cannot be returned), plus goroutine stacks that grew.
const burstMemoryReason = "SQLite's memory comes from modernc.org/libc's allocator, which keeps the 64 KiB regions SQLite freed mapped and resident for reuse (up to 4 MiB per region size) and cannot be trimmed, so shrink_memory gives the page caches back to it and not to the kernel; the Go heap's part is spans kept in use by a few objects that outlived the burst, not live data"

// cores and coreCount read the machine table for prose.
func (rep *Report) cores() string { return fmt.Sprint(rep.coreCount()) }

func (rep *Report) coreCount() int {
	for _, kv := range rep.Machine {
		if kv[0] == "Cores" {
			var n int
			fmt.Sscan(kv[1], &n)
			return n
		}
	}
	return 0
}
