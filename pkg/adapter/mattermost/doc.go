// SPDX-License-Identifier: Apache-2.0

// Package mattermost is herald's Mattermost adapter: a small client of the
// REST API v4 on net/http and of the event websocket (/api/v4/websocket) on
// github.com/coder/websocket, with no SDK.
//
// # Acknowledged means durable, on a platform without acks
//
// Mattermost never asks a client to acknowledge a websocket event, and a
// client that was disconnected misses what was posted meanwhile. The
// adapter therefore keeps one cursor: the create_at (milliseconds) of the
// newest post stored by Inbox.Deliver, every earlier one stored as well.
// After every (re)connect, the websocket is opened first and then the posts
// of each channel the bot is a member of are fetched with
// GET /api/v4/channels/{id}/posts?since=<cursor>, so nothing posted while
// herald was away is lost; the store deduplicates on the post id, which is
// the event id, so a post seen by both paths is stored once. The cursor is
// saved atomically in the platform's States (its state directory, or in
// cluster mode the cluster's store) after the posts up to it are stored, so
// the next herald process, or the next node holding the platform, catches
// up from there.
//
// # Sends
//
// POST /api/v4/posts carries herald's idempotency key as pending_post_id and
// in props. The server drops a second post with the same pending_post_id
// only within 30 seconds, so the adapter does not claim deduplicated sends;
// it implements adapter.Recoverer instead: a send whose outcome is unknown is
// settled by looking for the key in the channel's recent posts before
// posting again.
package mattermost
