// SPDX-License-Identifier: Apache-2.0

// Package telegramtest is a fake Telegram Bot API server on 127.0.0.1 for
// tests of herald's Telegram adapter and of herald end to end.
//
// It speaks the wire format of https://core.telegram.org/bots/api closely
// enough to catch the mistakes that lose or duplicate messages: getUpdates
// long-polls, confirms (forgets) every update below the offset it is given
// exactly like Telegram, and answers a newer poll by terminating the older
// one with 409; parameters are accepted as JSON, form or multipart bodies and
// in the query string. sendMessage enforces Telegram's 4096 UTF-16 code unit
// limit and keeps a per-chat transcript of what the user would see.
//
// Failures are scripted per method: Telegram error answers (429 with
// retry_after, 409, 400 "message is too long", 401), a blackhole that accepts
// the request and never answers, and an abrupt close of the connection.
// Refuse and Accept take the whole listener down and up again.
//
// The server drains every request body before it blocks, because net/http
// only notices that a client went away (and cancels r.Context) once the body
// has been read; without that a held poll would outlive the client and Close
// would wait for the whole poll timeout. Close never waits longer than a few
// seconds, whatever the handlers are doing.
package telegramtest
