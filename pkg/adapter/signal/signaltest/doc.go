// SPDX-License-Identifier: Apache-2.0

// Package signaltest is a fake signal-cli daemon in JSON-RPC HTTP mode, on
// 127.0.0.1, for the Signal adapter's tests. It serves the three endpoints
// of signal-cli daemon --http: GET /api/v1/events (Server-Sent Events with
// signal-cli's "<start>-<sequence>" ids, the last 1000 kept, Last-Event-ID
// honoured, a ":" keepalive), POST /api/v1/rpc (send) and GET
// /api/v1/check, with knobs for the failures the adapter must survive:
// replayed events, a blackholed stream, rate-limit answers, a daemon that
// is down or restarted, an unknown account.
package signaltest
