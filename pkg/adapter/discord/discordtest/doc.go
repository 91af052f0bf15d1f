// SPDX-License-Identifier: Apache-2.0

// Package discordtest is a fake Discord for tests: a real HTTP and websocket
// server on 127.0.0.1 that speaks the gateway (API v10, JSON, text frames)
// and the few REST routes herald uses.
//
// The gateway keeps sessions the way Discord does: every dispatch gets the
// next sequence number and is logged, so a client that resumes with a
// sequence number gets every later event replayed, including events pushed
// while it was disconnected. Sessions live in the server, not in a
// connection, so a new client process can resume one on a new connection,
// until it ends: a client close with 1000 or 1001, InvalidSession(false), or
// ExpireSessions (Discord's timeout). Tests script the rest: Reconnect (op 7),
// Invalid Session (op 9), close codes, dropped TCP connections, silence
// (no heartbeat ACKs), deafness (no reads, so no close handshake) and
// blackholes that accept a request and never answer.
//
// REST records what a user would see: created messages, deduplicated on
// nonce when enforce_nonce is set, edits applied. It can answer 401 for a bad
// token, and serves the shared fault vocabulary (pkg/adapter/fakeserver) at
// its points Gateway, REST and Messages: scripted error statuses, 429 with
// retry_after and X-RateLimit headers, black holes; it can also enforce a per-channel bucket, counting requests that ignore
// it.
//
// Close never hangs: it cancels every handler, closes every TCP connection
// by force and waits for its own goroutines.
package discordtest
