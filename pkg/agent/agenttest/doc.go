// SPDX-License-Identifier: Apache-2.0

// Package agenttest is a fake agent backend on 127.0.0.1 that speaks the
// OpenAI-compatible chat completions protocol with the Hermes Agent API
// server's extras (X-Hermes-Session-Id, hermes.tool.progress events,
// keepalive comments, Idempotency-Key).
//
// Without a script it answers every turn like a tiny agent: "agent: " plus
// the last user message, streamed word by word, so end-to-end tests of herald
// need no setup. Tests that need a particular behaviour queue Scripts (one per
// request, in order) or install a handler. Every request is recorded, and the
// number of requests in flight is tracked for tests of herald's concurrency
// limits.
//
// The server never keeps a handler running after its client went away or
// after Close, so Close returns promptly even with hanging scripts.
//
// Runs (NewRuns) is a second fake, of the Hermes Runs API: /v1/capabilities,
// POST /v1/runs with a durable idempotency table (a state file that survives
// Restart, after which unsettled runs read as interrupted), runs that execute
// on their own whatever their clients do, event buffers that expire after a
// configurable time (dropped when the subscriber leaves, or resumable with
// Last-Event-ID), stop, approval, and 404 after Evict. It counts executions
// per Idempotency-Key, so a test can assert that a turn ran once.
package agenttest
