// SPDX-License-Identifier: Apache-2.0

// Package activation hands herald the listening sockets systemd passed it
// (socket activation, sd_listen_fds(3):
// https://www.freedesktop.org/software/systemd/man/latest/sd_listen_fds.html,
// systemd.socket(5)) by their FileDescriptorName=, and binds the configured
// fallback address when none was passed.
//
// The daemon calls Load exactly once at start-up, then Listen for each of its
// listeners ("http", "admin"), and finally logs Unused and calls Close.
//
// Decisions:
//
//   - Load calls go-systemd's activation.Files(true): the fds can be taken
//     only once per process anyway (every other go-systemd helper calls
//     Files(true) too, coreos/go-systemd#286), and unsetting LISTEN_PID,
//     LISTEN_FDS and LISTEN_FDNAMES (plus LISTEN_PIDFDID, which go-systemd
//     does not know) means no child process and no later library call can
//     see stale values. This is the opposite of NOTIFY_SOCKET, which must
//     stay set (see package notify).
//   - Every passed fd must be a listening stream socket. Anything else (a
//     UDP socket, a regular file, a connection from Accept=yes) is an error
//     naming the fd, its index and its name: a unit that passes herald the
//     wrong thing is a configuration error to report, not to skip.
//   - A LISTEN_FDS meant for another PID (ExecStart= runs a wrapper such as
//     `sh -c`) makes go-systemd return nothing without error; Load logs a
//     warning so the fallback bind does not go unexplained.
//   - Listen never unlinks an inherited AF_UNIX socket (systemd owns the
//     path; net.FileListener's UnixListener does not unlink on Close). A
//     unix socket herald binds itself is created with mode 0660 in a 0750
//     directory, replaces a stale socket file only when nobody accepts on it,
//     and is unlinked on Close.
//   - Several fds with one name (a socket unit with two ListenStream= lines)
//     become one listener that accepts from all of them.
package activation
