// SPDX-License-Identifier: Apache-2.0

// Package fault is a fault-injection platform for herald's own tests. It is
// registered as the hidden adapter type "fault" and does nothing unless a
// configuration names it. Its main use reproduces the reference gateway's
// fatal failure: an adapter whose Stop blocks forever and ignores its
// context (hang_stop: true), which herald must abandon after
// shutdown.adapter_timeout.
package fault
