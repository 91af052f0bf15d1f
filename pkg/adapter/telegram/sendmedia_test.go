// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestSendMediaCalls(t *testing.T) {
	h := newHarness(t)
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	sum := sha256.Sum256(png)
	for _, tc := range []struct {
		name   string
		media  *message.OutboundMedia
		method string
	}{
		{"photo", adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", png, 0), "sendPhoto"},
		{"image over the photo limit is a document", adaptertest.MediaFile(t, message.MediaImage, "big.png", "image/png", nil, telegramtest.MaxPhotoUpload+1), "sendDocument"},
		{"gif image is a document", adaptertest.MediaFile(t, message.MediaImage, "a.gif", "image/gif", []byte("GIF89a"), 0), "sendDocument"},
		{"voice", adaptertest.MediaFile(t, message.MediaVoice, "v.ogg", "audio/ogg", []byte("OggS"), 0), "sendVoice"},
		{"audio", adaptertest.MediaFile(t, message.MediaAudio, "s.mp3", "audio/mpeg", []byte("ID3"), 0), "sendAudio"},
		{"video", adaptertest.MediaFile(t, message.MediaVideo, "v.mp4", "video/mp4", []byte("....ftyp"), 0), "sendVideo"},
		{"webm video is a document", adaptertest.MediaFile(t, message.MediaVideo, "v.webm", "video/webm", []byte("webm"), 0), "sendDocument"},
		{"file", adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0), "sendDocument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.media.Caption = "look"
			out := &message.Outbound{ChatID: "-1001", ThreadID: "17", ReplyTo: "9", IdempotencyKey: "k-" + tc.name, Media: tc.media}
			res, err := h.a.Send(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			ups := h.fake.Uploads()
			u := ups[len(ups)-1]
			if u.Method != tc.method || u.Name != tc.media.Name || u.ContentType != tc.media.MIME || u.Size != tc.media.Size ||
				u.Caption != "look" || u.ChatID != "-1001" || u.ThreadID != 17 || u.ReplyTo != 9 || res.MessageID == "" {
				t.Fatalf("upload %+v, result %+v", u, res)
			}
			if tc.name == "photo" && u.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("bytes differ: %s", u.SHA256)
			}
			if req := h.fake.Requests(tc.method); req[len(req)-1].Encoding != "multipart" || req[len(req)-1].Params.Has("parse_mode") {
				t.Fatalf("request %+v", req[len(req)-1])
			}
		})
	}
	if !h.a.SendsMedia(message.MediaVoice) || h.a.SendsMedia("sticker") {
		t.Error("SendsMedia")
	}
}

func TestSendMediaCaptionBoundedAndMarked(t *testing.T) {
	h := newHarness(t)
	m := adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
	m.Caption = strings.Repeat("é", 3000)
	// Recover's resend puts its mark in Text: it leads the caption.
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "5", Text: adapter.RecoveredMark + "\n", Media: m}); err != nil {
		t.Fatal(err)
	}
	c := h.fake.Uploads()[0].Caption
	if n := len(utf16.Encode([]rune(c))); n > MaxCaptionUnits || !strings.HasPrefix(c, adapter.RecoveredMark+"\n") {
		t.Fatalf("caption of %d units: %.40q", n, c)
	}
}

func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t)
	small := func() *message.OutboundMedia {
		return adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
	}
	send := func(ctx context.Context, m *message.OutboundMedia) error {
		_, err := h.a.Send(ctx, &message.Outbound{ChatID: "5", IdempotencyKey: "k", Media: m})
		return err
	}

	t.Run("over the upload limit is refused before uploading", func(t *testing.T) {
		err := send(context.Background(), adaptertest.MediaFile(t, message.MediaFile, "huge.bin", "application/octet-stream", nil, telegramtest.MaxUpload+1))
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
		if n := len(h.fake.Requests("sendDocument")); n != 0 {
			t.Fatalf("%d uploads", n)
		}
	})
	t.Run("413", func(t *testing.T) {
		h.fake.Script("sendDocument", telegramtest.Error(413, "Request Entity Too Large"))
		if err := send(context.Background(), small()); !errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("file is too big", func(t *testing.T) {
		h.fake.Script("sendDocument", telegramtest.Error(400, "Bad Request: file is too big"))
		if err := send(context.Background(), small()); !errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("other 400", func(t *testing.T) {
		h.fake.Script("sendDocument", telegramtest.Error(400, "Bad Request: chat not found"))
		if err := send(context.Background(), small()); !errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("429", func(t *testing.T) {
		h.fake.Script("sendDocument", telegramtest.Reply{Status: 429, Body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`})
		err := send(context.Background(), small())
		if after, ok := adapter.RetryAfter(err); !ok || after != 7*time.Second {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("lost answer is ambiguous and ctx bounds it", func(t *testing.T) {
		h.fake.Script("sendDocument", telegramtest.Reply{Blackhole: true})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- send(ctx, small()) }()
		select {
		case err := <-done:
			if !errors.Is(err, adapter.ErrAmbiguous) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(wait):
			t.Fatal("send did not end with its context")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		m := small()
		os.Remove(m.Path)
		if err := send(context.Background(), m); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
}
