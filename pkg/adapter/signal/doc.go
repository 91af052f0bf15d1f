// SPDX-License-Identifier: Apache-2.0

// Package signal is herald's Signal adapter. herald does not speak the
// Signal protocol itself: it talks to a local signal-cli daemon started in
// JSON-RPC HTTP mode (signal-cli -a ACCOUNT daemon --http 127.0.0.1:8080),
// on net/http with no SDK. Messages arrive on the daemon's Server-Sent
// Events stream (GET /api/v1/events), replies leave through the JSON-RPC
// method send (POST /api/v1/rpc).
//
// Three facts of signal-cli shape the package:
//
//   - There is no acknowledgement towards signal-cli: the daemon has already
//     acknowledged a message to the Signal service when it writes it to the
//     stream. Recent signal-cli versions number their events and keep the
//     last 1000 in memory; a client that reconnects with Last-Event-ID gets
//     the ones after it. The adapter records the id of the last event the
//     core has stored (in the platform's States: its state directory, or
//     in cluster mode the cluster's store) and resumes from
//     it, so that an event written to the stream but not yet stored when
//     herald died is sent again, as long as the daemon kept running.
//   - An event sent again carries the same envelope: the EventID is the
//     sender and the envelope timestamp, so the core's store deduplicates it.
//   - Signal has no idempotency key: a send whose outcome is unknown is
//     adapter.ErrAmbiguous, and Recover applies interrupted_send to it.
//
// The wire protocol, configuration keys, limits and failure handling are
// documented in README.md next to this file, which a test keeps in step with
// Config.
package signal
