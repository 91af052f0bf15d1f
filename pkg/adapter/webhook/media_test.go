// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestInboundAttachments(t *testing.T) {
	h := start(t)
	body := `{"conversation_id":"c","user_id":"u","attachments":[{"url":"https://files.example.com/a.png","name":"a.png","mime":"image/png"},{"url":"https://files.example.com/r.pdf","name":"r.pdf"},{"url":"https://files.example.com/v.ogg","kind":"voice"}]}`
	r, err := webhooktest.Post(ctxT(t), h.url, testSecret, []byte(body), "msg_att")
	if err != nil || r.StatusCode != 202 {
		t.Fatalf("answer %v %+v", err, r)
	}
	m := h.inbox.Messages()[0]
	a := m.Attachments
	if len(a) != 3 || a[0].Kind != message.MediaImage || a[0].Ref != "https://files.example.com/a.png" || a[0].Name != "a.png" ||
		a[1].Kind != message.MediaFile || a[2].Kind != message.MediaVoice || m.Text != "" {
		t.Fatalf("attachments %+v text %q", a, m.Text)
	}
	for _, tc := range []struct{ body, errHas string }{
		{`{"conversation_id":"c","user_id":"u","attachments":[{"url":"file:///etc/passwd"}]}`, "attachments[0].url"},
		{`{"conversation_id":"c","user_id":"u","attachments":[{"url":"https://x/y","kind":"sticker"}]}`, "attachments[0].kind"},
		{`{"conversation_id":"c","user_id":"u","attachments":[` + strings.TrimSuffix(strings.Repeat(`{"url":"https://x/y"},`, message.MaxAttachments+1), ",") + `]}`, "attachments, limit"},
	} {
		r, err := webhooktest.Post(ctxT(t), h.url, testSecret, []byte(tc.body), "")
		if err != nil || r.StatusCode != 400 || !strings.Contains(r.Error, tc.errHas) {
			t.Errorf("%s: %v %d %q", tc.errHas, err, r.StatusCode, r.Error)
		}
	}
}

func TestSendMedia(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
	a := sender(t, rcv.URL)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("%PDF-1.4"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !a.SendsMedia(message.MediaFile) {
		t.Fatal("webhook does not send media")
	}
	msg := reply(1, 2, "")
	msg.Media = &message.OutboundMedia{Kind: message.MediaFile, Source: "https://x/r.pdf", Name: "r.pdf", MIME: "application/pdf", Size: 8,
		SHA256: strings.Repeat("ab", 32), Path: path, URL: "http://127.0.0.1:8089/media/tok/r.pdf"}
	if _, err := a.Send(sendCtx(t, 5*time.Second), msg); err != nil {
		t.Fatal(err)
	}
	got := rcv.Delivered()
	want := webhooktest.Media{URL: msg.Media.URL, Kind: "file", Name: "r.pdf", MIME: "application/pdf", Size: 8, SHA256: msg.Media.SHA256}
	if len(got) != 1 || got[0].Media == nil || *got[0].Media != want || got[0].Part != 1 {
		t.Fatalf("delivered %+v", got)
	}
	// The bytes are gone: a permanent error, nothing posted.
	msg.Media.Path = filepath.Join(t.TempDir(), "missing")
	if _, err := a.Send(sendCtx(t, 5*time.Second), msg); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("missing file: %v", err)
	}
	if n := len(rcv.Requests()); n != 1 {
		t.Fatalf("%d requests", n)
	}
}
