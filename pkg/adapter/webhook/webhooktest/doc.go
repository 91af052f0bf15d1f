// SPDX-License-Identifier: Apache-2.0

// Package webhooktest provides the two ends of the generic webhook platform
// that herald does not own, as real servers and clients on 127.0.0.1:
//
//   - Receiver, the system replies are POSTed to. It verifies Standard
//     Webhooks signatures with the adapter's own code, deduplicates on
//     Idempotency-Key the way a platform supporting the header does (so a
//     test can assert that exactly one reply was delivered as the receiver
//     sees it, however many attempts it took), and plays scripted failures:
//     status codes with Retry-After, blackholes, abrupt closes, rejected
//     credentials.
//   - A sender: Post / PostGitHub and the request builders sign inbound
//     requests the way Standard Webhooks senders and GitHub do, for tests,
//     benchmarks and the end-to-end harness.
//
// It deliberately does not import the webhook package: the reply JSON is
// decoded into its own Reply type, so the adapter's wire format is checked
// against an independent reading of the contract.
package webhooktest
