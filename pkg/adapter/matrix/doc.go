// SPDX-License-Identifier: Apache-2.0

// Package matrix is herald's Matrix adapter: a client of the Matrix
// client-server API (long-polling /sync, sending with PUT
// /rooms/{roomId}/send) on net/http with no SDK, so that herald alone
// decides what happens on 429, timeouts and shutdown.
//
// Three rules shape the package:
//
//   - The since token is the acknowledgement. It is written to the state
//     directory (atomically) only after every event of its batch was stored
//     by Inbox.Deliver or skipped for good; a restart, a failed store or a
//     SIGKILL makes the next /sync return the same batch, whose events keep
//     their event_id (the EventID), so the store deduplicates them.
//   - Sends are deduplicated by the homeserver: the transaction id of the
//     PUT is herald's idempotency key, and a repeated PUT with the same
//     transaction id returns the event of the first one.
//   - Encrypted rooms are not read: the adapter has no end-to-end
//     encryption. An encrypted room is answered once with a plain notice
//     saying so.
//
// The wire protocol, configuration keys, limits and failure handling are
// documented in README.md next to this file.
package matrix
