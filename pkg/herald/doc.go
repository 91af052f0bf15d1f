// SPDX-License-Identifier: Apache-2.0

// Package herald is the daemon: Run is herald's whole lifecycle, in the order
// it happens, in daemon.go: load and validate configuration, obtain
// listeners, take the single-instance guard, open state, start adapters,
// READY=1, serve (reloads, watchdog, status), stop.
//
// It is the only package that imports everything else. The stop path is
// bounded whatever adapters do: drain (shutdown.drain_timeout, with
// EXTEND_TIMEOUT_USEC while work remains) plus concurrent adapter stops
// (shutdown.adapter_timeout each, abandoned when overrun) plus a small
// constant, and a SIGTERM-initiated stop always ends in a clean exit.
//
// Errors returned by Run carry the exit code main should use (ExitCode).
//
// The bodies the admin socket and the send API serve are defined in
// pkg/adminapi, with the client the herald command uses; the checks of
// `herald status` and `herald doctor` are in pkg/doctor.
package herald
