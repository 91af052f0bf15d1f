// SPDX-License-Identifier: Apache-2.0

// Package dispatch is herald's core between adapters and the agent: it takes
// inbound messages from adapters (it is their adapter.Inbox), stores them,
// runs one agent turn at a time per session, queues replies in the durable
// outbox and delivers them with retries.
//
// # Guarantees
//
//   - A message is stored (deduplicated on the platform's event id) before
//     Deliver returns, so an adapter acknowledges only durable messages.
//   - One turn per session at a time; messages of a busy session wait in
//     arrival order (busy policy queue) or cancel the running turn
//     (interrupt). /stop, /new (/reset), /status and /help bypass the queue.
//   - A turn's end (message done, reply parts queued, history appended) is one
//     transaction. Reply parts carry idempotency keys derived from the
//     inbound event, identical when a turn is re-run after a crash.
//   - Replies of a session are delivered in order; failed deliveries are
//     retried with jittered exponential backoff honouring the platform's
//     Retry-After (clamped at Options.MaxRetryAfter), and given up on permanent errors with a log entry and a
//     counter.
//   - A send to a platform that cannot deduplicate is marked in the store
//     before it starts. A reply whose send may have reached the user (the
//     answer was lost, or the process died with the mark set) is sent again
//     only through the adapter's Recoverer, never blindly.
//   - Messages of the send API (Send) are stored with the caller's
//     idempotency key in one transaction, split like replies, and delivered
//     through the same outbox; the same key never sends twice. Turns of the
//     API (Turn) are inbound messages under the platform's own rules.
//   - Access: allowed_users, approved pairings (dm_policy pairing gives an
//     unknown user's direct message a code instead of a turn) and per-user
//     budgets (Options.Limits) are decided before a message reaches the
//     agent; a refused message is stored without its text.
//   - On stop, Drain lets running turns and ready deliveries finish until its
//     context ends; what has not finished then stays pending in the store and
//     the next instance picks it up (Start re-dispatches pending messages and
//     undelivered replies).
//
// # Concurrency
//
// State lives under one mutex; agent calls and adapter sends run in their
// own goroutines without it. Every goroutine is tracked and ends when Drain's
// deadline cancels its context.
package dispatch
