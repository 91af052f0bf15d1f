// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

func mediaOut(key string, m *message.OutboundMedia) *message.Outbound {
	return &message.Outbound{Platform: TypeName, ChatID: "zhangsan", IdempotencyKey: key, Media: m}
}

// TestSendMediaTypes: each file is uploaded with its type and sent as that
// message type; what WeCom shows only as a file is a file.
func TestSendMediaTypes(t *testing.T) {
	h := newHarness(t, nil).start()
	jpeg := []byte("\xff\xd8\xff\xe0 jpeg image")
	sum := sha256.Sum256(jpeg)
	for _, tc := range []struct {
		media *message.OutboundMedia
		typ   string
	}{
		{adaptertest.MediaFile(t, message.MediaImage, "a.jpg", "image/jpeg", jpeg, 0), "image"},
		{adaptertest.MediaFile(t, message.MediaImage, "a.gif", "image/gif", []byte("GIF89a..."), 0), "file"},
		{adaptertest.MediaFile(t, message.MediaImage, "big.png", "image/png", nil, MaxImageUpload+1), "file"},
		{adaptertest.MediaFile(t, message.MediaVoice, "v.amr", "audio/amr", []byte("#!AMR\n...."), 0), "voice"},
		{adaptertest.MediaFile(t, message.MediaVoice, "v.ogg", "audio/ogg", []byte("OggS......"), 0), "file"},
		{adaptertest.MediaFile(t, message.MediaVideo, "v.mp4", "video/mp4", []byte("....ftypmp4"), 0), "video"},
		{adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.7"), 0), "file"},
	} {
		res, err := h.a.Send(context.Background(), mediaOut("k-"+tc.media.Name, tc.media))
		if err != nil || res.MessageID == "" {
			t.Fatalf("%s: %+v, %v", tc.media.Name, res, err)
		}
		ups, sent := h.fake.Uploads(), h.fake.Sent()
		u, s := ups[len(ups)-1], sent[len(sent)-1]
		if u.Type != tc.typ || u.Name != tc.media.Name || u.ContentType != tc.media.MIME || u.Size != tc.media.Size ||
			s.MsgType != tc.typ || s.MediaID != u.MediaID || s.ToUser != "zhangsan" || s.MsgID != res.MessageID {
			t.Fatalf("%s: upload %+v sent %+v", tc.media.Name, u, s)
		}
		if tc.typ == "video" && s.Title != "v.mp4" {
			t.Errorf("video title %q", s.Title)
		}
		if tc.media.Name == "a.jpg" && u.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("bytes differ")
		}
	}
	if !h.a.SendsMedia(message.MediaAudio) || h.a.SendsMedia("sticker") {
		t.Error("SendsMedia")
	}
}

// TestSendMediaRetryExactlyOnce: the caption follows the file as text; a
// retry after a failed step neither uploads nor shows the file again.
func TestSendMediaRetryExactlyOnce(t *testing.T) {
	h := newHarness(t, nil).start()
	o := mediaOut("k1", adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", []byte("\x89PNG image"), 0))
	o.Media.Caption = "the chart"
	h.fake.Inject(wecomtest.Send, fakeserver.RateLimit(1, 0)) // the image message
	if _, err := h.a.Send(context.Background(), o); !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("err %v", err)
	}
	h.fake.Inject(wecomtest.Send, fakeserver.RateLimit(1, 0)) // the caption
	if _, err := h.a.Send(context.Background(), o); !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("err %v", err)
	}
	res, err := h.a.Send(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 2 || sent[0].MsgType != "image" || sent[0].MsgID != res.MessageID ||
		sent[1].MsgType != "text" || sent[1].Text != "the chart" {
		t.Fatalf("%d uploads, sent %+v; want one upload, one image, one caption", len(ups), sent)
	}
	if h.a.progress.Len() != 0 {
		t.Error("progress of a delivered part kept")
	}
}

func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t, nil).start()
	pdf := func() *message.OutboundMedia {
		return adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.7"), 0)
	}
	send := func(m *message.OutboundMedia) error {
		_, err := h.a.Send(context.Background(), mediaOut("k-"+m.Name, m))
		return err
	}
	t.Run("over 20 MB is refused before uploading", func(t *testing.T) {
		err := send(adaptertest.MediaFile(t, message.MediaFile, "huge.bin", "application/octet-stream", nil, MaxFileUpload+1))
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || len(h.fake.Uploads()) != 0 {
			t.Fatalf("err %v, %d uploads", err, len(h.fake.Uploads()))
		}
	})
	t.Run("5 bytes are refused", func(t *testing.T) {
		err := send(adaptertest.MediaFile(t, message.MediaFile, "tiny.txt", "text/plain", []byte("12345"), 0))
		if !errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
	})
	for _, code := range []string{"40006", "40009", "40011"} {
		t.Run("errcode "+code+" is too large", func(t *testing.T) {
			h.fake.Inject(wecomtest.MediaUpload, fakeserver.Reject(200).WithCode(code).Times(1))
			if err := send(pdf()); !errors.Is(err, adapter.ErrTooLarge) {
				t.Fatalf("err %v", err)
			}
		})
	}
	t.Run("expired token is renewed", func(t *testing.T) {
		h.fake.ExpireTokens()
		if err := send(pdf()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		m := pdf()
		os.Remove(m.Path)
		if err := send(m); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("long caption is cut to the text limit", func(t *testing.T) {
		m := pdf()
		m.Name, m.Caption = "c.pdf", strings.Repeat("字", 1000)
		if err := send(m); err != nil {
			t.Fatal(err)
		}
		sent := h.fake.Sent()
		if c := sent[len(sent)-1].Text; len(c) > MaxTextBytes || !strings.HasSuffix(c, "…") {
			t.Fatalf("caption of %d bytes", len(c))
		}
	})
	t.Run("a dropped upload is temporary and quotes no token", func(t *testing.T) {
		h.fake.Inject(wecomtest.MediaUpload, fakeserver.Drop().Times(1))
		err := send(pdf())
		if !errors.Is(err, adapter.ErrTemporary) || strings.Contains(err.Error(), "fake-access-token") {
			t.Fatalf("err %v", err)
		}
	})
}
