// SPDX-License-Identifier: Apache-2.0

// Package dingtalktest is a fake DingTalk for tests, on loopback: the
// Stream mode gateway (connections/open and the websocket with its SYSTEM,
// EVENT and CALLBACK frames and their acknowledgements), the app access
// token, the robot send APIs and session webhooks. Knobs inject the
// failures the adapter must survive: redelivered messages, disconnect
// frames, frequency limits, expired tokens, rejected credentials and a
// blackholed socket.
package dingtalktest
