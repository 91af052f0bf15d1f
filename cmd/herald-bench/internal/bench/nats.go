// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// natsPortBase is the first port, on the sandbox's 127.0.0.1, where herald
// reaches the bench's NATS servers: server i at natsPortBase+i.
const natsPortBase = 4222

// natsCluster is a set of NATS servers with JetStream run by the bench
// process, each reached from the sandbox through a proxy listening in the
// sandbox's network namespace. Their data is on the host's disk, next to
// herald's state directory.
type natsCluster struct {
	servers []*server.Server
	proxies []*natstest.Proxy
	urls    []string // as herald sees them
}

// startNATS starts n servers (1: one server, 3: a cluster) storing under a
// fresh directory of the bench's temporary directory. syncAlways flushes
// every JetStream write to the device before it is acknowledged.
func (e *env) startNATS(name string, n int, syncAlways bool) (*natsCluster, error) {
	dir := filepath.Join(e.tmp, "nats-"+name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	servers, err := natstest.Run(natstest.Config{Dir: dir, N: n, SyncAlways: syncAlways})
	if err != nil {
		return nil, fmt.Errorf("bench: nats: %w", err)
	}
	c := &natsCluster{servers: servers}
	for i, s := range servers {
		addr := fmt.Sprintf("127.0.0.1:%d", natsPortBase+i)
		ln, err := listenInSandbox(e.sbx, addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.proxies = append(c.proxies, natstest.Forward(ln, s.Addr().String()))
		c.urls = append(c.urls, "nats://"+addr)
	}
	return c, nil
}

// Close stops the proxies and the servers; the data stays until the
// bench's temporary directory is removed.
func (c *natsCluster) Close() {
	for _, p := range c.proxies {
		p.Close()
	}
	natstest.Shutdown(c.servers)
}

// backendVariant is one store configuration of the JetStream measure.
type backendVariant struct {
	label      string
	servers    int // 0: SQLite
	replicas   int
	syncAlways bool
}

// backendVariants are the JetStream measure's rows; the first, SQLite, is
// the reference of the ratios.
var backendVariants = []backendVariant{
	{label: "SQLite, store.sync: full"},
	{label: "NATS R1 (1 server)", servers: 1, replicas: 1},
	{label: "NATS R1, sync always", servers: 1, replicas: 1, syncAlways: true},
	{label: "NATS R3 (3-server cluster)", servers: 3, replicas: 3},
	{label: "NATS R3, sync always", servers: 3, replicas: 3, syncAlways: true},
}

// backendRow is what the JetStream measure keeps of one variant's window.
type backendRow struct {
	label string
	nats  bool
	loop  loopResult
}

// backendTable renders the rows of the JetStream measure, with each row's
// rate and CPU per message as a ratio to the first row's (SQLite).
func backendTable(rows []backendRow) Table {
	t := Table{Header: []string{"herald store", "msgs/s", "msgs/s / SQLite", "end-to-end p50", "p99", "POST→202 p50", "POST→202 p99",
		"herald CPU per message", "herald CPU / SQLite", "bench process cores busy (load + NATS)", "NATS flushes per message", "late replies", "failed"}}
	if len(rows) == 0 {
		return t
	}
	ref := rows[0].loop
	for _, r := range rows {
		w := r.loop
		flushes := "–"
		if r.nats {
			flushes = num(w.benchFlushes, 3)
		}
		t.Rows = append(t.Rows, []string{r.label, rate(w.rate), ratio(Ratio(w.rate, ref.rate)), ms(w.e2e.P50), ms(w.e2e.P99),
			ms(w.post.P50), ms(w.post.P99), us(w.cpuPerMsg), ratio(Ratio(w.cpuPerMsg, ref.cpuPerMsg)),
			fmt.Sprintf("%.2f", w.cpu.BenchCores), flushes, fmt.Sprint(w.res.Late), fmt.Sprint(w.res.Failed)})
	}
	return t
}

// us formats seconds as microseconds; NaN as "–".
func us(s float64) string {
	if math.IsNaN(s) {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", s*1e6)
}

// 7. The JetStream store: herald's closed-loop rate on store.backend nats
// with one server and with a 3-server cluster, against SQLite in the same
// run.
func (r *runner) natsThroughput(ctx context.Context) error {
	var rows []backendRow
	for i, v := range backendVariants {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w, err := r.backendWindow(ctx, fmt.Sprint(i), v)
		if err != nil {
			return fmt.Errorf("%s: %w", v.label, err)
		}
		rows = append(rows, backendRow{v.label, v.servers > 0, w})
		r.logf("  %s: %s, end-to-end p50 %s p99 %s, herald CPU %s/msg, %d failed",
			v.label, rate(w.rate), ms(w.e2e.P50), ms(w.e2e.P99), us(w.cpuPerMsg), w.res.Failed)
	}
	r.rep.Add("JetStream store (store.backend: nats)",
		Para(fmt.Sprintf(`The closed loop of the throughput measure (the same load generator: %d senders × %d
conversations, each POST waits for its reply; %v warm-up, %v window; the same webhook + echo
configuration), run once per store backend in this run, each on an empty store. NATS runs
inside the bench process (nats-server %s, linked into herald-bench only), storing on the same
disk as herald's SQLite state directory. herald in the sandbox reaches each server through a
TCP proxy the bench listens with in the sandbox's network namespace (one more copy per byte on
each side). R1: one server, the store's stream with one replica. R3: three servers clustered
over loopback routes, the stream with three replicas, so a write is acknowledged once two of
the three servers have it. By default JetStream writes to the page cache and flushes to the
device every 2 minutes: an acknowledged write survives a crash of the server process, and
with R3 the loss of one machine, but not a power cut of all of them. "sync always" is the
server setting `+"`sync_interval: always`"+`: every write is flushed before it is
acknowledged, which is what SQLite's synchronous=FULL promises. herald's CPU is its main
process only; the NATS servers' CPU is in the bench process's column, together with the load
generator's (the SQLite row shows the load generator alone). NATS flushes are the bench
process's fsync and fdatasync calls per message, counted by perf: only the servers flush.
All servers and herald share the machine's %s cores: R3 here measures the protocol's cost,
not what three hosts give.`,
			senders, convs, r.plan.warmup, r.plan.window, server.VERSION, r.rep.cores())),
		backendTable(rows),
		Para(`Why R1 flushes without sync always: herald's JetStream store writes the keys of one
operation (a message's state and its pending mark, say) as one atomic batch publish. On this
nats-server version a stream with one replica on file storage stages each atomic batch in a
file store of its own, created on disk for the batch, its metadata written with O_SYNC and its
directory and data flushed at the commit, whatever sync_interval says. A replicated stream
stages the batch in memory and relies on its Raft log. The flush column shows the difference.`))
	return nil
}

// backendWindow runs one variant: its NATS servers (if any), herald on a
// fresh store, the closed loop; then stops herald and the servers.
func (r *runner) backendWindow(ctx context.Context, name string, v backendVariant) (loopResult, error) {
	conf := heraldConf{}
	if v.servers > 0 {
		nc, err := r.e.startNATS(name, v.servers, v.syncAlways)
		if err != nil {
			return loopResult{}, err
		}
		defer nc.Close()
		conf.NATS, conf.Replicas = nc.urls, v.replicas
	}
	s := r.heraldBench()
	s.config = conf.render()
	if err := r.prepare(ctx, s, true); err != nil {
		return loopResult{}, err
	}
	if _, err := r.e.mgr.start(ctx, s.unit); err != nil {
		return loopResult{}, err
	}
	w, err := r.closedLoop(ctx, s, false, v.servers > 0)
	// herald stops before its servers do (the deferred Close), so its
	// stop does not wait on a NATS that is gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, serr := r.e.mgr.stop(sctx, s.unit); err == nil {
		err = serr
	}
	return w, err
}
