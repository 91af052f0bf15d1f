// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSendMedia(t *testing.T) {
	h := newHarness(t)
	png := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("image data ", 500))
	out := &message.Outbound{ChatID: "+15550001", Media: adaptertest.MediaFile(t, message.MediaImage, "a;b,c.png", "image/png", png, 0)}
	out.Media.Caption = "look"
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	s := h.fake.Sent()
	if len(s) != 1 || s[0].Message != "look" || len(s[0].Recipient) != 1 || len(s[0].Attachments) != 1 {
		t.Fatalf("sent %+v", s)
	}
	if a := s[0].Attachments[0]; a.MIME != "image/png" || a.Name != "a_b_c.png" || a.Size != int64(len(png)) || a.SHA256 != sha(png) {
		t.Fatalf("attachment %+v", a)
	}
	if res.MessageID == "" {
		t.Error("no message id")
	}
	// A file alone, in a group, quoting: no message text.
	pdf := &message.Outbound{ChatID: GroupPrefix + groupID, ReplyTo: "1700000000001", RecipientID: "+15550001",
		Media: adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.4"), 0)}
	if _, err := h.a.Send(t.Context(), pdf); err != nil {
		t.Fatal(err)
	}
	if s := h.fake.Sent(); len(s) != 2 || s[1].Message != "" || s[1].GroupID != groupID || s[1].QuoteTimestamp != 1700000000001 ||
		len(s[1].Attachments) != 1 || s[1].Attachments[0].Name != "r.pdf" {
		t.Fatalf("sent %+v", s)
	}
}

func TestSendMediaTooLarge(t *testing.T) {
	h := newHarness(t)
	// Over 100 MiB: refused before encoding (a sparse file: nothing is read).
	big := &message.Outbound{ChatID: "+15550001", Media: adaptertest.MediaFile(t, message.MediaFile, "big.bin", "application/octet-stream", nil, maxAttachment+1)}
	if _, err := h.a.Send(t.Context(), big); !errors.Is(err, adapter.ErrTooLarge) || !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("over 100 MiB: %v", err)
	}
	if n := h.fake.Sends(); n != 0 {
		t.Fatalf("%d sends", n)
	}
	small := &message.Outbound{ChatID: "+15550001", Media: adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)}
	for _, r := range []signaltest.Reply{{Status: 413}, {Code: -1, Message: "Attachment too large"}} {
		h.fake.Script(r)
		if _, err := h.a.Send(t.Context(), small); !errors.Is(err, adapter.ErrTooLarge) {
			t.Fatalf("%+v: %v, want ErrTooLarge", r, err)
		}
	}
	if n := len(h.fake.Sent()); n != 0 {
		t.Fatalf("%d sent", n)
	}
}

func TestSendMediaExactlyOnce(t *testing.T) {
	file := func(t *testing.T) *message.Outbound {
		return &message.Outbound{ChatID: "+15550001", IdempotencyKey: "k",
			Media: adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), 0)}
	}
	t.Run("lost answer, at most once", func(t *testing.T) {
		// The daemon sends the file, then the answer is lost: ambiguous,
		// and recovery declines: the file went out once.
		h := newHarness(t, func(c *Config) {
			c.InterruptedSend = AtMostOnce
			c.RequestTimeout = 300 * time.Millisecond
		})
		out := file(t)
		h.fake.Script(signaltest.Reply{Hold: true})
		if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("lost answer: %v, want ErrAmbiguous", err)
		}
		if _, err := h.a.Recover(t.Context(), out, time.Now()); !errors.Is(err, adapter.ErrNotResent) {
			t.Fatalf("Recover = %v, want ErrNotResent", err)
		}
		if s := h.fake.Sent(); len(s) != 1 || len(s[0].Attachments) != 1 {
			t.Fatalf("sent %+v, want the file once", s)
		}
	})
	t.Run("resend marked", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.a.Recover(t.Context(), file(t), time.Now()); err != nil {
			t.Fatal(err)
		}
		if s := h.fake.Sent(); len(s) != 1 || s[0].Message != RecoveredMark || len(s[0].Attachments) != 1 {
			t.Fatalf("marked resend %+v", s)
		}
	})
}

func TestBase64Reader(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 3071, 3072, 3073, 10_000} {
		data := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, n/3+1)[:n]
		got, err := io.ReadAll(newBase64Reader(bytes.NewReader(data)))
		if err != nil || string(got) != base64.StdEncoding.EncodeToString(data) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

func TestDataURIPrefix(t *testing.T) {
	for _, tc := range []struct{ mime, name, want string }{
		{"image/png", "a.png", "data:image/png;filename=a.png;base64,"},
		{"", "", "data:application/octet-stream;filename=file;base64,"},
		{"text/plain; charset=utf-8", "x;y,z\n", "data:application/octet-stream;filename=x_y_z_;base64,"},
	} {
		if got := dataURIPrefix(tc.mime, tc.name); got != tc.want {
			t.Errorf("dataURIPrefix(%q, %q) = %q, want %q", tc.mime, tc.name, got, tc.want)
		}
	}
}
