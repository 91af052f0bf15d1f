// SPDX-License-Identifier: Apache-2.0

// Package feishutest is a fake Feishu/Lark open platform on 127.0.0.1 that
// speaks the real long-connection protocol, for tests of the feishu adapter
// and herald's end-to-end harness.
//
// One Server plays every part the adapter talks to: the endpoint bootstrap
// (POST /callback/ws/endpoint), the websocket (/ws/v2, pbbp2 frames, ping and
// pong, fragmented pushes, acks, redelivery of unacknowledged events), and the
// REST API (tenant_access_token, reply, create, edit, bot info). Failure modes
// are switched on per test: bootstrap errors, handshake rejections, servers
// that accept TCP and never answer (blackhole), connections dropped without a
// close frame, rate limits, invalidated tokens, replies stored but never
// answered. Handshake faults and black-holed replies use the fakes' shared
// vocabulary (pkg/adapter/fakeserver) at the points Handshake and Messages.
//
// The fake decodes every frame the client sends with the same strict codec the
// platform's SDK uses and fails the test on a frame it would reject, on an ack
// whose code is not 200, and on REST calls without a valid token.
package feishutest
