// SPDX-License-Identifier: Apache-2.0

// Package discord is herald's Discord adapter: a small gateway client (API
// v10, JSON encoding, no compression) on github.com/coder/websocket and a
// REST client on net/http.
//
// herald does not use discordgo: its Close can block forever while Open holds
// the session lock in a read without deadline, it sleeps under that lock,
// closes with 1000 (losing the session) and its heartbeat loop can start a
// reconnect after an intentional Close (all seen with v0.29.0). Here every network
// call takes a context and Stop is bounded in every state.
//
// # Acknowledged means durable, on a platform without acks
//
// Discord never asks a bot to acknowledge an event. What it offers instead is
// Resume: a client that reconnects with its session id and the sequence
// number of the last event it handled gets every later event replayed. The
// adapter therefore tracks one sequence number, the highest s such that this
// event and every earlier one was stored by Inbox.Deliver (or deliberately
// skipped). Heartbeats and Resume carry that number. When Deliver fails the
// adapter stops reading, closes the connection with a non-1000 code (which
// keeps the session resumable) and resumes from that number, so Discord sends
// the event again. The README describes the limits of this scheme.
//
// # Across restarts
//
// Resume also works from a new process, as long as Discord still keeps the
// session (a few minutes). With States that keep it (adapter.Env.States: a
// file in the platform's state directory, or in cluster mode the cluster's
// store, where the next holder of the platform finds it) the adapter saves
// session id, that sequence number and resume_gateway_url as a small JSON
// value (state.go), never the token, and Stop closes with 4000 instead of
// 1000, which would end the session. The next process resumes and the
// store deduplicates whatever Discord replays twice.
//
// # Ownership
//
// One goroutine (run) owns the session: it connects, reads and hands events
// to the inbox in order. Per connection it starts a heartbeat goroutine, a
// watcher that saves the session and performs the graceful close when Stop
// is called, and, with a state directory, a saver that writes the session
// periodically. REST calls (Send, Edit, Typing) run on the caller's
// goroutine.
package discord
