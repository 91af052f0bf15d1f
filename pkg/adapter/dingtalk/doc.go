// SPDX-License-Identifier: Apache-2.0

// Package dingtalk is herald's DingTalk adapter in Stream mode: a long
// connection that herald opens to DingTalk, so no public ingress is needed.
// It is written on net/http and github.com/coder/websocket with no SDK, so
// that every call, wait and stop is bounded by a context.
//
// Three rules shape the package:
//
//   - A bot message is acknowledged on the stream only after Inbox.Deliver
//     stored it. Frames are handled one at a time, in order, so a frame
//     that was not acknowledged is one DingTalk sends again; its msgId is
//     the EventID, and the store deduplicates the redelivery.
//   - A SYSTEM disconnect frame is obeyed without losing anything: the
//     adapter stops reading, acknowledges the disconnect, closes the socket
//     and opens a new connection. Frames it never read are unacknowledged
//     and come again on the next connection.
//   - Replies go through the message's sessionWebhook while it is valid,
//     else through the robot send APIs with a cached access token that is
//     refreshed before it expires and once more when DingTalk rejects it.
//     Agent text is sent as plain text with at.isAtAll false, and "@all"
//     and "@所有人" are broken with a zero-width space.
//
// Pictures, files, voice and video arrive with a downloadCode, which is
// stored with the message and exchanged for a short-lived URL when the
// core fetches the bytes; images and files go out through the media upload
// and the robot's sampleImageMsg and sampleFile templates.
//
// The wire protocol, configuration keys, limits and failure handling are
// documented in README.md next to this file.
package dingtalk
