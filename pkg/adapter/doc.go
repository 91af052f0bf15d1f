// SPDX-License-Identifier: Apache-2.0

// Package adapter defines the contract between herald's core and a chat
// platform adapter, the registry of adapter types, and the sentinel errors
// that tell the core whether a failed delivery is worth retrying.
//
// # Lifecycle
//
// The core builds each configured platform with the factory registered for
// its type, then:
//
//  1. New (the Factory): validates configuration and reads credentials. No
//     network I/O, no goroutines.
//  2. Start(ctx, inbox): returns promptly. It launches the intake (websocket
//     read loop, long poll) in goroutines bound to ctx. A platform that cannot
//     be reached is retried in the background with jittered exponential
//     backoff; Start does not fail for that. Start fails only for errors that
//     no retry can fix (it should be rare: most are found by New).
//  3. Send(ctx, msg) and the optional capabilities: called concurrently from
//     the core's delivery workers, during normal operation and during the
//     drain that follows a stop request. Every call obeys ctx.
//  4. Stop(ctx): ends intake and releases every connection (websockets get a
//     close frame with a bounded wait). It must return within 100 ms of ctx
//     ending, in every state: mid-handshake against a server that never
//     answers, mid long-poll, mid-reconnect backoff. The core bounds it with
//     shutdown.adapter_timeout and abandons an adapter that overruns, but an
//     adapter that needs the bound is a bug. After Stop no goroutine started
//     by the adapter may remain.
//
// # Intake
//
// An adapter's read path only validates, hands the message to Inbox.Deliver
// (which stores it durably and deduplicates it) and then acknowledges it to
// the platform. It never runs agent work: Feishu and Slack expect the ack
// within 3 s. If Deliver fails the adapter does not acknowledge, so the
// platform redelivers (to this instance or to the next one).
//
// # Capabilities
//
// Optional behaviour is discovered by type assertion: Editor, Typer,
// RouteProvider, Limiter, Recoverer. Each adapter package ends with an
// interface guard block (var _ adapter.Adapter = (*Adapter)(nil)).
//
// # Skeleton
//
// Adapters do not write their own lifecycle: Define registers a type from
// its typed configuration and constructor, Life is the start-once,
// stop-once state machine with the bounded wait, Reconnect the reconnect
// loop that reports to the status board, Backoff and Sleep the shared
// retry timing. README.md in this directory is the guide to adding a
// platform; adaptertest.Conformance checks the contract for every type.
//
// Adapter packages must not import pkg/herald, pkg/dispatch or each other.
package adapter
