// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestSendMediaImageThenCaption(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	png := []byte("\x89PNG\r\n\x1a\nimage")
	sum := sha256.Sum256(png)
	out := h.reply(t, dingtalktest.Msg{MsgID: "m1", Group: true, ConversationID: "cidg", Text: "draw"}, "")
	out.IdempotencyKey = "k1"
	out.Media = adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", png, 0)
	out.Media.Caption = "a chart for @all"
	res, err := send(t, h.a, out)
	if err != nil || res.MessageID == "" {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	ups := h.srv.Uploads()
	if len(ups) != 1 || ups[0].Type != "image" || ups[0].Name != "a.png" || ups[0].ContentType != "image/png" || ups[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("uploads %+v", ups)
	}
	sent := h.srv.Sent()
	if len(sent) != 2 || sent[0].Via != "groupSend" || sent[0].To != "cidg" || sent[0].MsgKey != "sampleImageMsg" || sent[0].MediaID != ups[0].MediaID {
		t.Fatalf("sent %+v", sent)
	}
	// The templates carry no caption: it follows as text, neutralised.
	if sent[1].Via != "webhook" || sent[1].Text != "a chart for @\u200ball" {
		t.Fatalf("caption %+v", sent[1])
	}
}

func TestSendMediaFile(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	out := h.reply(t, dingtalktest.Msg{MsgID: "m1", StaffID: "u7", Text: "report"}, "")
	out.IdempotencyKey = "k1"
	out.Media = adaptertest.MediaFile(t, message.MediaFile, "Q3.PDF", "application/pdf", []byte("%PDF-1.7"), 0)
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	ups, sent := h.srv.Uploads(), h.srv.Sent()
	if len(ups) != 1 || ups[0].Type != "file" || len(sent) != 1 || sent[0].Via != "batchSend" || sent[0].To != "u7" ||
		sent[0].MsgKey != "sampleFile" || sent[0].MediaID != ups[0].MediaID || sent[0].FileName != "Q3.PDF" || sent[0].FileType != "pdf" {
		t.Fatalf("uploads %+v sent %+v", ups, sent)
	}
	if !h.a.SendsMedia(message.MediaImage) || !h.a.SendsMedia(message.MediaFile) || h.a.SendsMedia(message.MediaVoice) || h.a.SendsMedia(message.MediaVideo) {
		t.Error("SendsMedia: images and files only")
	}
}

func TestSendMediaRetryExactlyOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	out := h.reply(t, dingtalktest.Msg{MsgID: "m1", Group: true, Text: "x"}, "")
	out.IdempotencyKey = "k1"
	out.Media = adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), 0)
	out.Media.Caption = "caption"

	// The robot send is limited after the upload: the retry reuses the
	// media_id.
	h.srv.LimitAPI(1)
	if _, err := send(t, h.a, out); !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("err %v", err)
	}
	// The image is shown, the caption is limited: the retry sends the
	// caption only.
	h.srv.LimitWebhook(1)
	if _, err := send(t, h.a, out); !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("err %v", err)
	}
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	ups, sent := h.srv.Uploads(), h.srv.Sent()
	if len(ups) != 1 || len(sent) != 2 || sent[0].MsgKey != "sampleImageMsg" || sent[1].Text != "caption" {
		t.Fatalf("%d uploads, sent %+v; want one upload, one image and one caption", len(ups), sent)
	}
	// Done: the same key again is a new part (the core never resends a
	// delivered one).
	if h.a.progress.Len() != 0 {
		t.Error("progress of a delivered part kept")
	}
}

func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	base := h.reply(t, dingtalktest.Msg{MsgID: "m1", Group: true, Text: "x"}, "")
	sendFile := func(m *message.OutboundMedia) error {
		out := *base
		out.IdempotencyKey = "k-" + m.Name
		out.Media = m
		_, err := send(t, h.a, &out)
		return err
	}
	pdf := func() *message.OutboundMedia {
		return adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
	}
	t.Run("over the limit is refused before uploading", func(t *testing.T) {
		err := sendFile(adaptertest.MediaFile(t, message.MediaImage, "big.png", "image/png", nil, MaxImageUpload+1))
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || len(h.srv.Uploads()) != 0 {
			t.Fatalf("err %v, %d uploads", err, len(h.srv.Uploads()))
		}
	})
	t.Run("invalid file size errcode is too large", func(t *testing.T) {
		h.srv.FailUploads(dingtalktest.ErrCodeFileSize)
		if err := sendFile(pdf()); !errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a type the templates do not show is permanent", func(t *testing.T) {
		for _, m := range []*message.OutboundMedia{
			adaptertest.MediaFile(t, message.MediaFile, "notes.txt", "text/plain", []byte("hi"), 0),
			adaptertest.MediaFile(t, message.MediaImage, "a.webp", "image/webp", []byte("RIFF"), 0),
		} {
			if err := sendFile(m); !errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrTooLarge) {
				t.Fatalf("%s: err %v", m.Name, err)
			}
		}
		if len(h.srv.Uploads()) != 0 {
			t.Fatal("uploaded")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		m := pdf()
		os.Remove(m.Path)
		if err := sendFile(m); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("rejected token is replaced once", func(t *testing.T) {
		h.srv.ExpireTokens()
		if err := sendFile(pdf()); err != nil {
			t.Fatal(err)
		}
		if len(h.srv.Uploads()) != 1 {
			t.Fatalf("%d uploads", len(h.srv.Uploads()))
		}
	})
	t.Run("unreachable: temporary, and the error quotes no token", func(t *testing.T) {
		h.srv.Close()
		err := sendFile(pdf())
		if !errors.Is(err, adapter.ErrTemporary) || strings.Contains(err.Error(), "access_token") || strings.Contains(err.Error(), "?") {
			t.Fatalf("err %v", err)
		}
	})
}
