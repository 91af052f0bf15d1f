// SPDX-License-Identifier: Apache-2.0

// Package fakeserver is the plumbing the platform fakes (the <name>test
// packages under pkg/adapter) share: one fault vocabulary and the code that
// schedules and applies it. It is for tests only; nothing in herald's binary
// imports it.
//
// A fault is one of
//
//	Blackhole()                 read the request, never answer (until the fake closes)
//	Drop()                      close the connection without an answer
//	RateLimit(n, retryAfter)    answer the next n requests "slow down, retry after"
//	Reject(status)              answer with an error status
//
// refined with Times(n) (only the next n requests; default: every request
// until Heal), WithCode (the platform's own error code in the body) and
// WithRetryAfter. Each fake names its fault points (Slack: Open, Upgrade,
// Post, Update; Discord: Gateway, REST; Feishu: Handshake, REST) and embeds
// Faults, so every fake is driven the same way:
//
//	fake.Inject(slacktest.Post, fakeserver.Blackhole())
//	fake.Inject(discordtest.REST, fakeserver.RateLimit(1, 2*time.Second))
//	fake.Heal(slacktest.Post)
//
// How a fault looks on the wire (a Slack {"ok":false} body, a Discord
// retry_after, a Feishu code) is the fake's business; Hold and DropConn are
// the parts that are the same everywhere.
//
// Listen, Serve, Start and Stop run a fake's HTTP server on 127.0.0.1 (or
// in a sandbox's network namespace) and stop it without waiting on a
// client still connected.
package fakeserver
