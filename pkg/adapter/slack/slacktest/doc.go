// SPDX-License-Identifier: Apache-2.0

// Package slacktest is a fake Slack on 127.0.0.1 for adapter tests: the Web
// API methods herald calls (apps.connections.open, chat.postMessage with
// message metadata, chat.update, conversations.history and
// conversations.replies) and the Socket Mode websocket behind the URL it
// hands out. Options.Listen lets it serve another network namespace.
//
// It reproduces what the adapter must cope with: hello, envelopes that are
// redelivered with retry_attempt/retry_reason until acknowledged, server
// pings, scripted disconnect requests (warning and refresh_requested followed
// by a close after a grace period, link_disabled), abrupt closes, a zombie
// connection that stops answering pings, rate limits with Retry-After,
// {"ok":false} errors, and black holes that accept a connection and never
// answer (the Web API, the websocket upgrade, chat.postMessage; a
// black-holed post is created, so WaitMessages reports it, and only its
// answer is held). Close never
// hangs, whatever mode is active.
package slacktest
