// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

// Package fault is a fault-injection platform for herald's own tests. It
// exists only in test builds (go build -tags heraldtest, which the
// end-to-end suites and herald-bench use); the production binary has no
// "fault" type. Registered as the hidden adapter type "fault", it does
// nothing unless a configuration names it. Its main use reproduces the
// failure a gateway must survive above all: an adapter whose Stop blocks
// forever and ignores its context (hang_stop: true), which herald must
// abandon after shutdown.adapter_timeout.
package fault
