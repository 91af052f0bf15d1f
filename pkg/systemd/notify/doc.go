// SPDX-License-Identifier: Apache-2.0

// Package notify is herald's side of the sd_notify(3) protocol: one method
// per state change (Ready, Reloading, Stopping, Status, Errno, Watchdog,
// ExtendTimeout) on a Notifier that the daemon creates once and hands to
// whoever reports state.
//
// Protocol: https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html
// (systemd 252: https://www.freedesktop.org/software/systemd/man/252/sd_notify.html).
//
// Why a wrapper around go-systemd's daemon.SdNotify:
//
//   - Every call passes unsetEnv=false. SdNotify(true, …) unsets
//     NOTIFY_SOCKET, after which every later call (watchdog pings included)
//     silently does nothing and systemd kills the service (traefik#1525,
//     k3s#13725). Children must get a cleaned environment instead.
//   - Keys that must be seen together go in one datagram: READY=1 with its
//     STATUS=, RELOADING=1 with MONOTONIC_USEC= (253+ Type=notify-reload
//     checks it; 252 ignores it), STATUS= with ERRNO=.
//   - STATUS= must be one valid UTF-8 line or PID 1 ignores it; Notifier
//     sanitises it and drops a repeat of the current status.
//   - Without NOTIFY_SOCKET (not under systemd, or Type=simple) every method
//     is a no-op returning nil.
//   - A failed send is logged once per kind of error and otherwise only
//     returned: no caller has anything better to do with it than go on.
//
// A send is a short blocking datagram write to PID 1's socket. It can stall
// only while PID 1's receive queue is full, so call the Notifier from the
// lifecycle and watchdog goroutines, not from per-message hot paths.
//
// Package notifytest provides a fake NOTIFY_SOCKET for tests.
package notify
