// SPDX-License-Identifier: Apache-2.0

// Package bench is herald-bench: it measures herald against a floor (the
// smallest program doing the same systemd work) in one run, under a real
// systemd booted in throw-away namespaces (pkg/testsupport/systemdbox), and writes
// BENCHMARKS.md.
//
// Why it is built this way:
//
//   - Both subjects run in the same sandbox, one after the other, with the
//     same unit settings (the floor's unit is derived from herald.service),
//     so ratios compare programs, not machines or unit files.
//   - Timings come from systemd itself (monotonic timestamps of the unit) or
//     from D-Bus jobs on the manager's private socket: what `systemctl`
//     waits for, without forking a client for every sample.
//   - Load comes from the bench process with sockets in the sandbox's
//     network namespace; replies come back to a receiver listening there.
//     The bench shares the machine's cores with herald, as a co-located
//     client would; the floor pays the same.
//   - herald's state directory is a host directory on disk, so sync=full
//     means fsync to a device, not to the sandbox's RAM overlay.
//   - Nothing asserts a timing: the report states PASS or MISS against the
//     issue's goals, and the unit tests cover only the pure parts
//     (statistics, goals, unit derivation, parsing, rendering).
package bench
