// SPDX-License-Identifier: Apache-2.0

// Package feishu is herald's Feishu/Lark adapter: a thin client of the open
// platform's long connection (长连接) for intake and of its REST API for
// replies. It registers the adapter types "feishu" and "lark" (the same
// adapter, defaulting to the international domain).
//
// herald does not use the official SDK (larksuite/oapi-sdk-go): before
// v3.11 its Start never returned and its Close did not unblock it, and
// later versions wait for in-flight handlers at shutdown and reassemble
// fragmented events on concurrent goroutines, losing fragments. A gateway
// built on the SDK had its Feishu disconnect block on network I/O until
// systemd killed it, which left a stale PID file and a restart loop
// (NousResearch/hermes-agent#14128). The protocol is small enough to own:
// an HTTP bootstrap, protobuf frames (internal/pbbp2) over
// github.com/coder/websocket, ping/pong, acks, fragment reassembly.
//
// Invariants the code keeps:
//   - An event is acknowledged only after Inbox.Deliver returned nil (the
//     message is stored durably), or when it can never be processed.
//   - Frames are handled in order on one goroutine, which owns the fragment
//     buffer.
//   - Stop sends a close frame, waits at most 2 s and never past its
//     context, and returns within 100 ms of its context ending in every
//     state; no goroutine survives it.
//   - Errors that no retry can fix (credentials, forbidden, connection
//     limit) end the retries with PhaseFatal.
//
// README.md documents the wire protocol, configuration and failure handling.
// Package feishutest is a fake platform for tests.
package feishu
