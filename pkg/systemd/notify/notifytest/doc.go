// SPDX-License-Identifier: Apache-2.0

// Package notifytest is a fake sd_notify socket for tests: Listen binds a
// unixgram socket, points NOTIFY_SOCKET at it for the duration of the test
// and records every datagram in arrival order, so tests can assert the exact
// messages herald sends to systemd (sd_notify(3),
// https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html).
//
// Because it uses t.Setenv, a test using it cannot run in parallel with
// other tests of its package.
package notifytest
