// SPDX-License-Identifier: Apache-2.0

// Package watchdog sends systemd's WATCHDOG=1 keep-alive pings, but only
// while herald is healthy (sd_watchdog_enabled(3):
// https://www.freedesktop.org/software/systemd/man/latest/sd_watchdog_enabled.html,
// WatchdogSec= in systemd.service(5)).
//
// A bare ticker would keep pinging from its own goroutine while the main loop
// or the dispatcher is deadlocked, hiding exactly the failure the watchdog
// exists for. Run therefore pings only after a health check (supplied by
// the daemon: main loop ticked, dispatcher answers) returned nil within its
// deadline. A check that fails, times out or never returns withholds the
// ping; if that lasts WatchdogSec, systemd aborts herald (SIGABRT, a
// goroutine dump in the journal, Result=watchdog) and restarts it.
//
// herald must never signal.Notify SIGABRT: the Go runtime's default handling
// (dump all goroutines, exit 2) is what makes a watchdog kill diagnosable,
// and catching it would leave the process alive until TimeoutAbortSec and
// SIGKILL.
package watchdog
