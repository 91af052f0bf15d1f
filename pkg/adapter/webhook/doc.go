// SPDX-License-Identifier: Apache-2.0

// Package webhook is herald's generic webhook platform: any system that can
// make a signed HTTP POST can talk to the agent, and receives the replies as
// signed HTTP POSTs of its own.
//
// Inbound requests arrive on herald's HTTP listener (the socket-activated
// one) at the route the adapter provides (adapter.RouteProvider). A request
// is verified (GitHub X-Hub-Signature-256 or Standard Webhooks), bounded in
// size and time, stored through the core's Inbox, and only then answered
// 202: a 202 means the message survives a crash. Every failure maps to a
// status code that tells the sender whether to retry (5xx, 503 + Retry-After)
// or not (4xx), because the sender's retry policy is the only retry there is
// on this side.
//
// Replies go out as one POST per reply part, signed per Standard Webhooks,
// with webhook-id and Idempotency-Key set to the core's idempotency key so a
// retry after an ambiguous timeout is recognised by the receiver. Send makes
// one attempt and classifies its outcome with the adapter sentinels; the core
// owns retries and backoff.
//
// The wire protocol, configuration keys and metrics are documented in
// README.md next to this file, which a test keeps in step with Config.
package webhook
