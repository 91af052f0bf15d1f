// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/message"
)

// attachmentOf builds the inbound message and attachment the intake makes
// of an attachment object of the fake.
func attachmentOf(t testing.TB, obj map[string]any, channel, msgID string) (*message.Inbound, *message.Attachment) {
	t.Helper()
	in := &intake{platform: "discord"}
	m := &messageData{ID: msgID, ChannelID: channel, Author: user{ID: "31"}, Attachments: []attachmentData{{
		ID: obj["id"].(string), Filename: obj["filename"].(string), ContentType: obj["content_type"].(string),
		Size: int64(obj["size"].(int)), URL: obj["url"].(string),
	}}}
	msg, skip := in.inbound(m, time.Now())
	if skip != "" || len(msg.Attachments) != 1 {
		t.Fatalf("inbound %+v, skip %q", msg, skip)
	}
	return msg, &msg.Attachments[0]
}

func TestFetchMedia(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	data := bytes.Repeat([]byte("png!"), 500)
	msg, att := attachmentOf(t, srv.AddAttachment("200", "700", discordtest.Attachment{Name: "a.png", ContentType: "image/png", Data: data}), "200", "700")
	read := func() ([]byte, int64, error) {
		body, size, err := h.a.FetchMedia(t.Context(), msg, att)
		if err != nil {
			return nil, 0, err
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		return b, size, err
	}
	if b, size, err := read(); err != nil || !bytes.Equal(b, data) || size != int64(len(data)) {
		t.Fatalf("fetch: %d bytes, size %d, %v", len(b), size, err)
	}
	// The signed URL expires: herald reads the message again for a fresh one.
	srv.ExpireAttachmentURLs()
	if b, _, err := read(); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("fetch after expiry: %d bytes, %v", len(b), err)
	}
	if n, auth := srv.CDNRequests(); n != 3 || auth != 0 {
		t.Fatalf("%d CDN requests, %d with Authorization; want 3 (ok, expired, fresh) and none", n, auth)
	}
	// Deleted: permanent, with the reason.
	srv.ExpireAttachmentURLs()
	srv.DeleteAttachments("700")
	if _, _, err := read(); !errors.Is(err, adapter.ErrPermanent) || adapter.Retryable(err) {
		t.Fatalf("deleted: %v", err)
	}
	// A reference off Discord's CDN is never fetched.
	bad := *att
	bad.Ref = "https://example.org/a.png"
	if _, _, err := h.a.FetchMedia(t.Context(), msg, &bad); !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "CDN") {
		t.Fatalf("foreign URL: %v", err)
	}
}

func TestFetchMediaDripHonoursContext(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	msg, att := attachmentOf(t, srv.AddAttachment("200", "701", discordtest.Attachment{Name: "v.ogg", ContentType: "audio/ogg", Data: make([]byte, 1000), Drip: time.Second}), "200", "701")
	ctx, cancel := context.WithCancel(t.Context())
	body, _, err := h.a.FetchMedia(ctx, msg, att)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	adaptertest.ReadEndsOnCancel(t, body, cancel, 5*time.Second)
}
