// SPDX-License-Identifier: Apache-2.0

// Package agent talks to the AI agent backend that answers chat messages:
// any OpenAI-compatible /v1/chat/completions server (kind openai), the Hermes
// Agent API server (kind hermes, which keeps the conversation history itself,
// keyed by X-Hermes-Session-Id), or the built-in echo agent (kind echo, no
// network) used by the default configuration and by demos.
//
// The client is plain net/http plus a small server-sent-events reader of its
// own: herald must survive keepalive comments during long tool runs, key on
// Hermes event names, and stop a turn at once when its context ends, which
// the common Go client libraries do not all do (go-openai gives up after 300
// non-data lines; openai-go pulls in a large dependency tree).
//
// # Timeouts
//
// agent.connect_timeout bounds dialing and the wait for response headers (so
// a server that ignores "stream": true must answer within it);
// first_token_timeout bounds the wait for the first reply text, idle_timeout
// the silence between any two bytes of the stream (keepalive comments count),
// and total_timeout the whole turn, retries included. A fired timeout
// cancels the request and is reported as a *TimeoutError.
//
// # Errors
//
// Complete's errors start with "agent: " and match one of the sentinels with
// errors.Is, so the dispatcher can decide what to tell the user and whether
// the turn may run again later:
//
//   - context.Canceled / context.DeadlineExceeded: the caller's ctx ended
//     (/stop, interrupt, shutdown). Nothing is retried.
//   - ErrTimeout: a first-token, idle or total timeout fired (*TimeoutError
//     says which).
//   - ErrRateLimited: HTTP 429 on every attempt (*HTTPError carries
//     Retry-After).
//   - ErrUnavailable: 5xx or 408 on every attempt, a connection failure, or a
//     stream that broke off or reported an error after the backend accepted
//     the turn.
//   - ErrRejected: another 4xx or 3xx (bad key, bad request, idempotency
//     conflict, wrong URL) or a request this package refuses to send. Running
//     the turn again will not help.
//   - ErrProtocol: the answer could not be understood (not JSON or an event
//     stream, malformed chunk, line or reply too large).
//
// # Retries
//
// A request is retried, with the same Idempotency-Key, only while the
// backend has not accepted the turn: connection errors, 429, 408 and 5xx,
// up to agent.max_attempts, with jittered exponential backoff or the
// server's Retry-After. Once a 2xx response arrived the backend may be running
// tools with side effects, so a failure after that is returned as is and the
// caller decides whether to run the whole turn again.
package agent
