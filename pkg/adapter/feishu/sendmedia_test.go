// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaSender = (*Adapter)(nil)

// mediaPart writes data to a file and returns a part sending it.
func mediaPart(t *testing.T, key string, kind message.MediaKind, name, mime string, data []byte, caption string) *message.Outbound {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &message.Outbound{Platform: "feishu", ChatID: "oc_1", IdempotencyKey: key, Media: &message.OutboundMedia{
		Kind: kind, Name: name, MIME: mime, Size: int64(len(data)), Caption: caption, Path: path,
	}}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestSendMedia: images go through /im/v1/images and an image message (a
// post when captioned), files through /im/v1/files with their file_type
// and a file message followed by the caption, Opus voice as an audio
// message; the fake checks every key was uploaded.
func TestSendMedia(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 5000)...)
	pdf := []byte("%PDF-1.4 hello")
	ogg := append([]byte("OggS"), bytes.Repeat([]byte{2}, 300)...)
	tests := []struct {
		part               *message.Outbound
		data               []byte
		endpoint, fileType string
		msgTypes           []string
		text               string
	}{
		{mediaPart(t, "k1", message.MediaImage, "a.png", "image/png", png, ""), png, "images", "", []string{"image"}, ""},
		{mediaPart(t, "k2", message.MediaImage, "b.png", "image/png", png, "a chart"), png, "images", "", []string{"post"}, "a chart"},
		{mediaPart(t, "k3", message.MediaFile, "r.pdf", "application/pdf", pdf, "the report"), pdf, "files", "pdf", []string{"file", "text"}, "the report"},
		{mediaPart(t, "k4", message.MediaVoice, "v.ogg", "audio/ogg", ogg, ""), ogg, "files", "opus", []string{"audio"}, ""},
		{mediaPart(t, "k5", message.MediaFile, "data.bin", "application/octet-stream", pdf, ""), pdf, "files", "stream", []string{"file"}, ""},
	}
	for i, tt := range tests {
		before := len(h.fake.Messages())
		res, err := h.a.Send(context.Background(), tt.part)
		if err != nil {
			t.Fatalf("%d: Send: %v", i, err)
		}
		ups := h.fake.Uploads()
		up := ups[len(ups)-1]
		if up.Endpoint != tt.endpoint || up.FileType != tt.fileType || up.SHA256 != sum(tt.data) || up.Size != int64(len(tt.data)) {
			t.Errorf("%d: upload %+v", i, up)
		}
		if up.Endpoint == "images" && up.ImageType != "message" {
			t.Errorf("%d: image_type %q", i, up.ImageType)
		}
		if up.Endpoint == "files" && up.FileName != tt.part.Media.Name {
			t.Errorf("%d: file_name %q", i, up.FileName)
		}
		msgs := h.fake.Messages()[before:]
		if len(msgs) != len(tt.msgTypes) {
			t.Fatalf("%d: %d messages, want %v", i, len(msgs), tt.msgTypes)
		}
		if msgs[0].MessageID != res.MessageID || msgs[0].Key != up.Key || msgs[0].UUID != tt.part.IdempotencyKey {
			t.Errorf("%d: message %+v, result %+v, upload key %s", i, msgs[0], res, up.Key)
		}
		var text string
		for j, m := range msgs {
			if m.MsgType != tt.msgTypes[j] {
				t.Errorf("%d: message %d type %q, want %q", i, j, m.MsgType, tt.msgTypes[j])
			}
			text += m.Text
		}
		if text != tt.text {
			t.Errorf("%d: text %q, want %q", i, text, tt.text)
		}
	}
}

// TestSendMediaRetry: a part sent again (after an ambiguous outcome)
// uploads again but shows once: the message carries the part's uuid.
func TestSendMediaRetry(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	part := mediaPart(t, "part-7", message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.4"), "caption")
	for i := 0; i < 2; i++ {
		if _, err := h.a.Send(context.Background(), part); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.fake.Uploads()); n != 2 {
		t.Errorf("%d uploads, want 2 (uploads are not idempotent)", n)
	}
	if msgs := h.fake.Messages(); len(msgs) != 2 || msgs[0].MsgType != "file" || msgs[1].Text != "caption" {
		t.Errorf("messages %+v, want one file and one caption", msgs)
	}
}

// TestSendMediaFailures: limits are checked before any upload; upload
// failures are classified, and a failed upload sends no message.
func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	big := mediaPart(t, "k1", message.MediaImage, "big.png", "image/png", make([]byte, maxImageUpload+1), "")
	if _, err := h.a.Send(context.Background(), big); !errors.Is(err, adapter.ErrTooLarge) {
		t.Errorf("image over 10 MB: %v, want ErrTooLarge", err)
	}
	empty := mediaPart(t, "k2", message.MediaFile, "e.txt", "text/plain", nil, "")
	if _, err := h.a.Send(context.Background(), empty); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("empty file: %v, want ErrPermanent", err)
	}
	missing := mediaPart(t, "k3", message.MediaFile, "m.txt", "text/plain", []byte("x"), "")
	missing.Media.Path = filepath.Join(t.TempDir(), "gone")
	if _, err := h.a.Send(context.Background(), missing); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("missing file: %v, want ErrPermanent", err)
	}
	if n := h.fake.Requests("POST /open-apis/im/v1/images") + h.fake.Requests("POST /open-apis/im/v1/files"); n != 0 {
		t.Errorf("%d upload requests for files that cannot be sent", n)
	}
	ok := mediaPart(t, "k4", message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), "")
	h.fake.FailNext(feishutest.Failure{Status: 500, Code: 1500, Msg: "internal error"})
	if _, err := h.a.Send(context.Background(), ok); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("upload 500: %v, want ErrTemporary", err)
	}
	h.fake.FailNext(feishutest.Failure{Status: 400, Code: 234001, Msg: "Invalid request param."})
	if _, err := h.a.Send(context.Background(), ok); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("upload refused: %v, want ErrPermanent", err)
	}
	if n := len(h.fake.Messages()); n != 0 {
		t.Errorf("%d messages after failed uploads", n)
	}
	h.fake.InvalidateTokens()
	if _, err := h.a.Send(context.Background(), ok); err != nil {
		t.Errorf("after a token rejection the upload is retried once: %v", err)
	}
}

// TestSendMediaCancelled: a cancelled context ends an upload at once.
func TestSendMediaCancelled(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	part := mediaPart(t, "k1", message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), "")
	if _, err := h.a.Send(ctx, part); err == nil || !adapter.Retryable(err) {
		t.Errorf("cancelled: %v, want a retryable error", err)
	}
}
