// SPDX-License-Identifier: Apache-2.0

// Package telegram is herald's Telegram Bot API adapter: a long-polling
// getUpdates client and sendMessage, on net/http with no SDK, so that herald
// alone decides what happens on 409, 429, timeouts and shutdown.
//
// Two rules shape the package, both against the usual ways a Telegram
// gateway loses messages (dropping pending updates at start, a shutdown that
// waits out a long poll):
//
//   - Nothing is ever dropped at the platform. Pending updates are fetched
//     at start (no drop_pending_updates, no negative offset), and the offset
//     that confirms updates to Telegram advances only past updates the core
//     has stored (Inbox.Deliver returned nil) or that can never be stored.
//     An update Telegram sends again after a restart carries the same
//     update_id, which is the EventID, so the core's store deduplicates it.
//   - Every wait obeys a context. The in-flight long poll is cancelled by
//     Stop (the old Go SDK's was not, so shutdown waited up to 50 s), and
//     backoff, 429 waits and blocked deliveries end with it too.
//
// Telegram has no idempotency key: a sendMessage whose outcome is unknown
// (the request was written, then the connection failed or timed out) is
// reported as adapter.ErrAmbiguous and must not be retried blindly; Recover
// applies interrupted_send to it.
//
// The wire protocol, configuration keys, limits and failure handling are
// documented in README.md next to this file, which a test keeps in step with
// Config.
package telegram
