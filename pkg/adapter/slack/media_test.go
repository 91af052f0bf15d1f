// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
)

var (
	_ adapter.MediaFetcher = (*Adapter)(nil)
	_ adapter.MediaSender  = (*Adapter)(nil)
)

// TestFileShareInAndFetch: a file_share message from the fake arrives with
// its files as attachments and the text as caption, and FetchMedia reads
// each file's bytes with the bot token.
func TestFileShareInAndFetch(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{3}, 4000)...)
	voice := bytes.Repeat([]byte{5}, 700)
	img := h.fake.AddFile(slacktest.File{Name: "shot.png", Mimetype: "image/png", Data: png})
	clip := h.fake.AddFile(slacktest.File{Name: "audio_message.webm", Mimetype: "audio/webm", Subtype: "slack_audio", Data: voice})
	h.fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Subtype: "file_share", Text: "look", Files: []map[string]any{img, clip}})
	msgs := h.inbox.WaitN(t, 1, wait)
	in := msgs[0]
	if in.Text != "look" || len(in.Attachments) != 2 || in.Attachments[0].Kind != message.MediaImage || in.Attachments[1].Kind != message.MediaVoice {
		t.Fatalf("inbound %+v", in)
	}
	for i, want := range [][]byte{png, voice} {
		body, size, err := h.a.FetchMedia(context.Background(), in, &in.Attachments[i])
		if err != nil {
			t.Fatalf("FetchMedia %d: %v", i, err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, want) || size != int64(len(want)) {
			t.Errorf("file %d: %d bytes (announced %d), want %d: %v", i, len(got), size, len(want), err)
		}
	}
}

// TestFetchMediaFailures: each failure is classified; the token never
// follows a redirect to another host.
func TestFetchMediaFailures(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	att := func(obj map[string]any) *message.Attachment {
		return &message.Attachment{Kind: message.MediaFile, Ref: obj["url_private_download"].(string), MIME: obj["mimetype"].(string)}
	}
	fetch := func(a *message.Attachment) error {
		body, _, err := h.a.FetchMedia(context.Background(), &message.Inbound{}, a)
		if body != nil {
			body.Close()
		}
		return err
	}
	ok := att(h.fake.AddFile(slacktest.File{Name: "a.txt", Mimetype: "text/plain", Data: []byte("hi")}))

	h.fake.SetFilesRead(false)
	if err := fetch(ok); !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "files:read") {
		t.Errorf("without files:read: %v, want ErrPermanent naming the scope", err)
	}
	h.fake.SetFilesRead(true)

	off := att(h.fake.AddFile(slacktest.File{Name: "b.txt", Mimetype: "text/plain", Data: []byte("x"), OffHost: true}))
	if err := fetch(off); !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "files:read") {
		t.Errorf("redirect to another host: %v, want ErrPermanent", err)
	}
	if _, leaked := h.fake.Downloads(); leaked != 0 {
		t.Errorf("the token reached another host %d times", leaked)
	}

	gone := h.fake.AddFile(slacktest.File{ID: "FGONE", Name: "c.txt", Mimetype: "text/plain", Data: []byte("x")})
	h.fake.RemoveFile("FGONE")
	if err := fetch(att(gone)); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("deleted file: %v, want ErrPermanent", err)
	}

	h.fake.Inject(slacktest.Download, fakeserver.Reject(503).Times(1))
	if err := fetch(ok); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("503: %v, want ErrTemporary", err)
	}
	h.fake.Inject(slacktest.Download, fakeserver.RateLimit(1, 2*time.Second).Times(1))
	if err := fetch(ok); !errors.Is(err, adapter.ErrRateLimited) {
		t.Errorf("429: %v, want ErrRateLimited", err)
	}
	if err := fetch(&message.Attachment{Kind: message.MediaFile, Ref: "https://evil.example/files-pri/x"}); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("a URL off Slack: %v, want ErrPermanent without a request", err)
	}
	if err := fetch(ok); err != nil {
		t.Errorf("after the faults: %v", err)
	}
}

// TestFetchMediaSlowBody: a dripping body ends with the caller's context.
func TestFetchMediaSlowBody(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	obj := h.fake.AddFile(slacktest.File{Name: "big.bin", Mimetype: "application/octet-stream", Data: make([]byte, 1<<20), Drip: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	body, _, err := h.a.FetchMedia(ctx, &message.Inbound{}, &message.Attachment{Kind: message.MediaFile, Ref: obj["url_private_download"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if _, err := io.ReadFull(body, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, body); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body did not end with its context")
	}
}

func mediaOut(t *testing.T, kind message.MediaKind, name, caption string, data []byte) *message.Outbound {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &message.Outbound{Platform: "slack", ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "1690000000.000001", IdempotencyKey: "k-" + name,
		Media: &message.OutboundMedia{Kind: kind, Name: name, MIME: "application/pdf", Size: int64(len(data)), Caption: caption, Path: p}}
}

// TestSendMedia: getUploadURLExternal, the bytes to upload_url, then
// completeUploadExternal sharing the file in the thread with the caption.
func TestSendMedia(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	data := []byte("%PDF-1.4 report & <stuff>")
	res, err := h.a.Send(context.Background(), mediaOut(t, message.MediaFile, "report.pdf", "the <report>", data))
	if err != nil {
		t.Fatal(err)
	}
	ups := h.fake.Uploads()
	sum := sha256.Sum256(data)
	if len(ups) != 1 {
		t.Fatalf("uploads %+v", ups)
	}
	u := ups[0]
	if u.Filename != "report.pdf" || u.Length != int64(len(data)) || u.SHA256 != hex.EncodeToString(sum[:]) ||
		u.Channel != "C1" || u.ThreadTS != "1690000000.000001" || u.Caption != "the &lt;report&gt;" || u.TS != res.MessageID {
		t.Errorf("upload %+v, result %+v", u, res)
	}
	if msgs := h.fake.Messages(); len(msgs) != 1 || len(msgs[0].FileIDs) != 1 || msgs[0].FileIDs[0] != u.FileID {
		t.Errorf("messages %+v", msgs)
	}
}

// TestSendMediaFailures: failures before the share are safe to retry and
// share nothing; an unknown outcome of the share is ErrAmbiguous and
// Recover declines to share again (at most once).
func TestSendMediaFailures(t *testing.T) {
	opts := fastOptions()
	opts.MaxUploadBytes = 10
	h := newHarness(t, opts, func(c *Config) { c.RequestTimeout = 2 * time.Second })
	send := func(m *message.Outbound) error { _, err := h.a.Send(context.Background(), m); return err }
	if err := send(mediaOut(t, message.MediaFile, "big.pdf", "", make([]byte, 11))); !errors.Is(err, adapter.ErrTooLarge) {
		t.Errorf("over the workspace limit: %v, want ErrTooLarge", err)
	}
	if err := send(mediaOut(t, message.MediaFile, "empty.pdf", "", nil)); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("empty: %v, want ErrPermanent", err)
	}
	small := mediaOut(t, message.MediaFile, "s.pdf", "", []byte("%PDF"))
	h.fake.Inject(slacktest.UploadBytes, fakeserver.Reject(500).Times(1))
	if err := send(small); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("upload 500: %v, want ErrTemporary", err)
	}
	h.fake.Inject(slacktest.UploadBytes, fakeserver.Reject(413).Times(1))
	if err := send(small); !errors.Is(err, adapter.ErrTooLarge) {
		t.Errorf("upload 413: %v, want ErrTooLarge", err)
	}
	h.fake.Inject(slacktest.GetUploadURL, fakeserver.Blackhole().Times(1))
	if err := send(small); !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("getUploadURLExternal unanswered: %v, want ErrTemporary (nothing shared)", err)
	}
	if n := len(h.fake.Uploads()); n != 0 {
		t.Fatalf("%d files shared by failed sends", n)
	}
	h.fake.Inject(slacktest.Complete, fakeserver.Blackhole().Times(1))
	err := send(small)
	if !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("completeUploadExternal unanswered: %v, want ErrAmbiguous", err)
	}
	if _, err := h.a.Recover(context.Background(), small, time.Now().Add(-time.Minute)); !errors.Is(err, adapter.ErrNotResent) {
		t.Errorf("Recover of a file share: %v, want ErrNotResent", err)
	}
	if n := len(h.fake.Uploads()); n != 1 {
		t.Errorf("%d shares, want the one whose answer was lost", n)
	}
}
