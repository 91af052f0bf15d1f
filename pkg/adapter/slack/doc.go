// SPDX-License-Identifier: Apache-2.0

// Package slack is herald's Slack adapter: a thin Socket Mode client on
// net/http and coder/websocket instead of an SDK, so that herald controls
// acknowledgements, reconnection and shutdown (see the README).
//
// Intake: apps.connections.open (app-level token) gives a websocket URL;
// after hello, Slack pushes envelopes that must be acknowledged within 3 s.
// herald acknowledges an envelope only after Inbox.Deliver stored it, on the
// connection it came from; an unacknowledged envelope is redelivered by
// Slack with the same event_id, which the store deduplicates. One reader
// goroutine per connection hands envelopes to one intake worker, so a slow
// store never stops the reader from answering pings, and events are stored
// in the order they arrived.
//
// Slack recycles connections: on a disconnect warning or refresh request
// the next connection is opened while the current one is still read, and
// the old one is closed only once the new one said hello. A herald ping on
// a timer detects a link that went silent. Bad credentials and
// link_disabled end in PhaseFatal; everything else is retried with
// jittered exponential backoff capped at 5 minutes.
//
// Replies go out with chat.postMessage (bot token), edits with chat.update.
package slack
