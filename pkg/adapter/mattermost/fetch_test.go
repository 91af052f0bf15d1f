// SPDX-License-Identifier: Apache-2.0

package mattermost

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
	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/message"
)

// fileOf posts f in the direct channel and returns the message and
// attachment the intake makes of it.
func fileOf(t *testing.T, h *harness, f mattermosttest.File) (*message.Inbound, *message.Attachment) {
	t.Helper()
	p := h.fake.PostFiles("dm", "ann", "", f)
	msg, reason := h.a.inbound(&post{ID: p.ID, ChannelID: p.ChannelID, UserID: p.UserID, FileIDs: p.FileIDs,
		Metadata: &postMetadata{Files: []fileInfo{{ID: p.FileIDs[0], Name: f.Name, MimeType: f.MimeType, Size: int64(len(f.Data))}}}},
		"D", &user{ID: mmBot()})
	if msg == nil || len(msg.Attachments) != 1 {
		t.Fatalf("inbound %+v, %q", msg, reason)
	}
	return msg, &msg.Attachments[0]
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	data := bytes.Repeat([]byte("png!"), 500)
	msg, att := fileOf(t, h, mattermosttest.File{Name: "a.png", MimeType: "image/png", Data: data})
	body, size, err := h.a.FetchMedia(t.Context(), msg, att)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(b, data) || size != int64(len(data)) {
		t.Fatalf("fetch: %d bytes, size %d, %v", len(b), size, err)
	}
	if n := h.fake.Requests("GET /api/v4/files/" + att.Ref); n != 1 {
		t.Fatalf("%d downloads", n)
	}
}

func TestFetchMediaFailures(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	msg, att := fileOf(t, h, mattermosttest.File{Name: "a.pdf", MimeType: "application/pdf", Data: []byte("%PDF")})
	fetch := func() error {
		body, _, err := h.a.FetchMedia(t.Context(), msg, att)
		if err == nil {
			body.Close()
		}
		return err
	}
	t.Run("rate limited is retryable with its wait", func(t *testing.T) {
		h.fake.RateLimit(1, "2", "")
		err := fetch()
		if d, ok := adapter.RetryAfter(err); !ok || d != 2*time.Second || !adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("deleted file is permanent", func(t *testing.T) {
		h.fake.DeleteFile(att.Ref)
		err := fetch()
		if !errors.Is(err, adapter.ErrPermanent) || adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a file of a channel the bot left is permanent", func(t *testing.T) {
		msg, att := fileOf(t, h, mattermosttest.File{Name: "b.pdf", MimeType: "application/pdf", Data: []byte("%PDF")})
		h.fake.RemoveChannel("dm")
		_, _, err := h.a.FetchMedia(t.Context(), msg, att)
		if !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		h.fake.Expire()
		if err := fetch(); !errors.Is(err, adapter.ErrUnauthorized) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not a file id", func(t *testing.T) {
		bad := *att
		bad.Ref = ""
		if _, _, err := h.a.FetchMedia(t.Context(), msg, &bad); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
}

// A body that trickles is cut when ctx ends: the read returns an error
// instead of hanging.
func TestFetchMediaDripHonoursContext(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	msg, att := fileOf(t, h, mattermosttest.File{Name: "v.ogg", MimeType: "audio/ogg", Data: make([]byte, 1000), Drip: time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	body, _, err := h.a.FetchMedia(ctx, msg, att)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	adaptertest.ReadEndsOnCancel(t, body, cancel, wait)
}
