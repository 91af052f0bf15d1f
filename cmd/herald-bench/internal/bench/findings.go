// SPDX-License-Identifier: Apache-2.0

package bench

import (
	_ "embed"
	"fmt"
)

// findings is the analysis of the profiles and misses, written by hand from
// a run of this bench and shipped in the report as is: numbers in it are
// from that run (it says which), not from the run that renders it.
//
//go:embed findings.md
var findings string

func methodNotes() []Block {
	return []Block{
		List{
			"One program (`cmd/herald-bench`) boots a throw-away systemd as PID 1 in private namespaces (`pkg/testsupport/systemdbox`), installs herald with the project's own units (`units/herald.service`, `herald.socket`, `herald-admin.socket`, the `herald` user through `systemd-sysusers`) and the floors, and measures them one after the other in the same sandbox. Closing the sandbox stops every process it ran.",
			"The floor (`cmd/herald-bench/internal/floor`, the standard library and herald's SQLite driver only) takes the socket named `http`, sends READY=1, pings the watchdog, serves a fixed reply (or relays an echo to the receiver) and drains on SIGTERM like herald. `floor.service` is `herald.service` with ExecStart= and the socket and directory names replaced (same user, credentials, hardening, watchdog); `floor-bare.service` is the same program with no sandboxing. With `-durable` it is the durable relay of the throughput measure: each message committed to SQLite (group commit, WAL, the same synchronous setting and fdatasync as herald, its database on the host's disk like herald's) before the 202, and marked delivered in a batched update after its echo arrived.",
			"Per-message write counters: commits and SQL statements as each program counts them (herald's /metrics, the durable relay's /counters), device flushes as fdatasync and fsync calls of the process counted by the kernel (`perf stat` on the syscall tracepoints, run on the host for the window), bytes written as write_bytes of /proc/<pid>/io.",
			"herald runs its own configuration at /etc/herald/herald.yaml: the packaged `packaging/herald.yaml` (no platform enabled) where noted, otherwise the bench's: the webhook platform (unsigned, `reply_url` = the bench's receiver in the sandbox's network namespace), the echo agent, state in StateDirectory=. The state directory is a directory on the host's disk bound into the sandbox, so `store.sync: full` really reaches the device.",
			"The JetStream measures (`-only nats,failover`) run NATS inside the bench process (`github.com/nats-io/nats-server/v2`, linked into herald-bench only, never into herald): one server or a 3-server cluster on loopback, storing on the host's disk next to herald's state directory, reached from the sandbox through TCP proxies the bench listens with in the sandbox's network namespace. The failover measure boots three more sandboxes, one per herald node (a machine each, as far as herald can tell), runs herald in cluster mode in each against a 3-server cluster, and serves them a minimal fake Telegram Bot API (getMe; getUpdates held for its timeout) through a listener in each node's network namespace, so every poll is known by node.",
			"Timings are systemd's own monotonic timestamps (start to READY) or the wall time of D-Bus jobs over the sandbox's system bus (start, stop, restart: what `systemctl` waits for). Load runs in the bench process with sockets in the sandbox's network namespace; it shares the cores with herald.",
			"Statistics: median (mean of the two middle values for an even count), min–max, and p99 by nearest rank (an observed value). Ratios are of medians. Verdicts are computed from these numbers by `goals.go`; no test asserts a timing.",
			fmt.Sprintf("`make bench` = `make build` + `go run ./cmd/herald-bench -o BENCHMARKS.md` (root; about %d minutes on 2 cores). `-quick` runs a short smoke version, `-only` a subset, `-profiles DIR` keeps the pprof files, `-herald FILE` measures another herald binary (an earlier commit's, for a before/after comparison in one sandbox).", 8),
		},
	}
}
