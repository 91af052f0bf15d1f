// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"io"

	"github.com/heraldgw/herald/pkg/message"
)

// MediaFetcher is implemented by adapters whose inbound attachments need the
// platform's API (and credentials) to download: Telegram getFile, the Feishu
// message-resource API, Slack url_private with the bot token. Without it the
// core fetches an attachment whose Ref is an http(s) URL with its guarded
// client (no private addresses unless media.allow_private).
type MediaFetcher interface {
	// FetchMedia opens the bytes of att, an attachment of msg. The core
	// reads at most media.max_bytes+1 bytes from the body, closes it, and
	// bounds the whole download with ctx; FetchMedia must honour ctx in
	// every network call. Errors are classified with this package's
	// sentinels: a link that expired or a file the platform refuses to
	// serve wraps ErrPermanent (wrap ErrTooLarge when the platform says the
	// file is too big to download), a network or 5xx failure ErrTemporary.
	// The returned size is the one the platform announced for the body, -1
	// if unknown.
	FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (body io.ReadCloser, size int64, err error)
}

// MediaSender is implemented by adapters that upload files natively
// (Telegram sendPhoto/sendDocument/sendVoice, Slack's external upload, Discord
// attachments, Feishu image or file upload then a message). For them Send
// is also called with parts whose Media is set; it reads the bytes from
// Media.Path and keeps the part's idempotency as for text. To adapters
// without it, or when SendsMedia reports false for the kind, the core sends
// a text line with the file's link instead.
type MediaSender interface {
	SendsMedia(kind message.MediaKind) bool
}
