// SPDX-License-Identifier: Apache-2.0

// Package signature signs and verifies webhook requests: GitHub's
// X-Hub-Signature-256 and Standard Webhooks 1.0 (webhook-id,
// webhook-timestamp, webhook-signature).
//
// It is shared by the webhook adapter (inbound verification, outbound
// signing) and by webhooktest (the fake receiver and the signing client), so
// that tests exercise the very code that runs in production rather than a
// second implementation that might agree with itself only.
//
// Specifications: https://docs.github.com/webhooks/securing and
// https://github.com/standard-webhooks/standard-webhooks spec/standard-webhooks.md.
package signature
