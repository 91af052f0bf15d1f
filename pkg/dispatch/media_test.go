// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// pngHeader returns the start of a PNG of the given size: enough for the
// sniffer, not a decodable image.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"))
	binary.Write(&b, binary.BigEndian, w)
	binary.Write(&b, binary.BigEndian, h)
	b.Write([]byte{8, 6, 0, 0, 0, 0, 0, 0, 0})
	b.Write(make([]byte, 200))
	return b.Bytes()
}

type mediaServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newMediaServer(t *testing.T) *mediaServer {
	s := &mediaServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) { s.hits.Add(1); w.Write(pngHeader(1280, 720)) })
	mux.HandleFunc("/big.pdf", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 5000)) })
	// A zip archive named .png: stored and named as what it is, never decoded.
	mux.HandleFunc("/bomb.png", func(w http.ResponseWriter, r *http.Request) {
		w.Write(append([]byte("PK\x03\x04"), make([]byte, 300)...))
	})
	// A download that never ends.
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("%PDF-1.4"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func mediaOptions(t *testing.T, allowPrivate bool) *Media {
	t.Helper()
	ms, err := media.OpenStore(filepath.Join(t.TempDir(), "media"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	c, err := media.NewClient(media.ClientOptions{MaxBytes: 1000, Timeout: 5 * time.Second, Deadline: 10 * time.Second, AllowPrivate: allowPrivate})
	if err != nil {
		t.Fatal(err)
	}
	key, err := media.LoadOrCreateKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	sg, err := media.NewSigner(key, ms)
	if err != nil {
		t.Fatal(err)
	}
	return &Media{Store: ms, Client: c, Signer: sg, PublicURL: "http://herald.test", URLTTL: time.Hour, MaxBytes: 1000,
		ImageTransport: "auto", DataURLMaxBytes: 1000, Retries: 1, DownloadTimeout: 500 * time.Millisecond}
}

func withAttachments(m *message.Inbound, base string, names ...string) *message.Inbound {
	for _, n := range names {
		kind := message.MediaFile
		if strings.HasSuffix(n, ".png") {
			kind = message.MediaImage
		}
		m.Attachments = append(m.Attachments, message.Attachment{Kind: kind, Ref: base + "/" + n, Name: n})
	}
	return m
}

func TestMediaToAgent(t *testing.T) {
	srv := newMediaServer(t)
	e := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
	e.deliver(withAttachments(in("1", "c", "u", "caption"), srv.URL, "img.png", "big.pdf", "bomb.png", "slow"))
	e.ad.waitSent(t, 1)
	calls := e.agent.Calls()
	um := calls[0].Messages[len(calls[0].Messages)-1]
	for _, want := range []string{
		"caption\n[image 1280×720 png, 233 B] http://herald.test/media/",
		"[file big.pdf could not be fetched: too large (over 1000 B)]",
		"[file bomb.png (application/zip, 304 B)] http://herald.test/media/",
		"[file slow could not be fetched: the download failed]",
	} {
		if !strings.Contains(um.Content, want) {
			t.Errorf("agent content lacks %q:\n%s", want, um.Content)
		}
	}
	if len(um.Parts) != 2 || um.Parts[0].Text != um.Content || um.Parts[1].ImageURL == nil || !strings.HasPrefix(um.Parts[1].ImageURL.URL, "data:image/png;base64,") {
		t.Fatalf("parts %+v", um.Parts)
	}
	if strings.Contains(um.Content, "data:") {
		t.Fatal("a data: URL in the text (and so in history)")
	}
	// The fetch outcomes are recorded: a turn run again does not download again.
	f, err := e.st.MediaFetches(t.Context(), 1)
	if err != nil || len(f) != 4 || f[0].SHA256 == "" || f[1].Error == "" {
		t.Fatalf("recorded fetches %+v %v", f, err)
	}
}

func TestMediaForbiddenAddress(t *testing.T) {
	srv := newMediaServer(t)
	e := newEnv(t, Options{Media: mediaOptions(t, false)}, allowAll)
	e.deliver(withAttachments(in("1", "c", "u", "see"), srv.URL, "img.png"))
	e.ad.waitSent(t, 1)
	um := e.agent.Calls()[0].Messages[len(e.agent.Calls()[0].Messages)-1]
	if !strings.Contains(um.Content, "see\n[image img.png could not be fetched: its address is not allowed]") || um.Parts != nil {
		t.Fatalf("content %q parts %+v", um.Content, um.Parts)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("the forbidden address was requested")
	}
}

func TestMediaDeclaredTooLargeNotDownloaded(t *testing.T) {
	srv := newMediaServer(t)
	e := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
	m := withAttachments(in("1", "c", "u", "doc"), srv.URL, "img.png")
	m.Attachments[0].Size = 25 << 20
	m.Attachments[0].Name = "x.pdf"
	e.deliver(m)
	e.ad.waitSent(t, 1)
	um := e.agent.Calls()[0].Messages[len(e.agent.Calls()[0].Messages)-1]
	if !strings.Contains(um.Content, "[image x.pdf could not be fetched: too large (25 MiB > 1000 B)]") || srv.hits.Load() != 0 {
		t.Fatalf("content %q, %d downloads", um.Content, srv.hits.Load())
	}
}

func TestMediaReplyOut(t *testing.T) {
	srv := newMediaServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.pdf"), []byte("%PDF-1.4 report"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o600)
	os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.txt"))
	mo := mediaOptions(t, true)
	mo.OutboundDirs = []string{dir}
	e := newEnv(t, Options{Media: mo}, allowAll)
	e.ad.media = true
	text := "here\n![chart](" + srv.URL + "/img.png)\nMEDIA: " + filepath.Join(dir, "r.pdf") +
		"\nMEDIA: " + dir + "/../" + filepath.Base(outside) + "/secret.txt\nMEDIA: " + filepath.Join(dir, "link.txt") + "\nbye"
	e.deliver(in("1", "c", "u", text))
	sent := e.ad.waitSent(t, 6)
	if sent[0].Text != "re: here" || sent[0].Media != nil {
		t.Fatalf("part 1 %+v", sent[0])
	}
	img := sent[1].Media
	if img == nil || img.Kind != message.MediaImage || img.Caption != "chart" || img.Name != "img.png" || !strings.HasPrefix(img.URL, "http://herald.test/media/") {
		t.Fatalf("part 2 %+v", sent[1])
	}
	if b, err := os.ReadFile(img.Path); err != nil || !bytes.Equal(b, pngHeader(1280, 720)) {
		t.Fatalf("image bytes at %s: %v", img.Path, err)
	}
	if f := sent[2].Media; f == nil || f.Name != "r.pdf" || f.MIME != "application/pdf" {
		t.Fatalf("part 3 %+v", sent[2])
	}
	for i := 3; i <= 4; i++ {
		if sent[i].Media != nil || !strings.Contains(sent[i].Text, "could not be sent: not under media.outbound_dirs") {
			t.Fatalf("part %d (outside outbound_dirs) %+v", i+1, sent[i])
		}
	}
	if sent[5].Text != "bye" {
		t.Fatalf("last part %+v", sent[5])
	}
	for i, s := range sent {
		if s.Part != i+1 || s.Parts != 6 || s.IdempotencyKey != message.IdempotencyKey("p", "1", i+1) {
			t.Fatalf("part %d numbering %+v", i, s)
		}
	}
}

func TestMediaReplyToTextPlatform(t *testing.T) {
	srv := newMediaServer(t)
	mo := mediaOptions(t, false)
	e := newEnv(t, Options{Media: mo}, allowAll)
	e.deliver(in("1", "c", "u", "x\nMEDIA: "+srv.URL+"/img.png"))
	sent := e.ad.waitSent(t, 2)
	// The reply's URL resolves to 127.0.0.1: refused, said in a text line.
	if sent[1].Media != nil || !strings.Contains(sent[1].Text, "could not be sent: its address is not allowed") || srv.hits.Load() != 0 {
		t.Fatalf("loopback URL %+v, %d hits", sent[1], srv.hits.Load())
	}
	mo2 := mediaOptions(t, true)
	e2 := newEnv(t, Options{Media: mo2}, allowAll)
	e2.deliver(in("1", "c", "u", "x\nMEDIA: "+srv.URL+"/img.png"))
	sent = e2.ad.waitSent(t, 2)
	// A platform without uploads gets the link.
	if sent[1].Media != nil || !strings.HasPrefix(sent[1].Text, "[image 1280×720 png, 233 B] http://herald.test/media/") {
		t.Fatalf("text platform %+v", sent[1])
	}
}

func TestMediaPrunedWithMessages(t *testing.T) {
	mo := mediaOptions(t, true)
	e := newEnv(t, Options{Media: mo, Retention: time.Hour}, allowAll)
	put := func(s string, age time.Duration) string {
		it, err := mo.Store.Put(t.Context(), strings.NewReader(s), 1000)
		if err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		os.Chtimes(mo.Store.Path(it.SHA256), old, old)
		return it.SHA256
	}
	kept, old, recent := put("referenced", 3*time.Hour), put("unreferenced", 3*time.Hour), put("just fetched", 0)
	id, _, err := e.st.AddInbound(t.Context(), "k", in("9", "c", "u", "x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.RecordMediaFetch(t.Context(), id, store.MediaFetch{Index: 0, SHA256: kept, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.d.prune()
	if !mo.Store.Has(kept) || mo.Store.Has(old) || !mo.Store.Has(recent) {
		t.Fatalf("after prune: referenced %v, old %v, recent %v", mo.Store.Has(kept), mo.Store.Has(old), mo.Store.Has(recent))
	}
}

func TestMediaUserIsTold(t *testing.T) {
	srv := newMediaServer(t)
	e := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
	m := withAttachments(in("1", "c", "u", "hi"), srv.URL, "big.pdf")
	m.Unsupported = []string{"sticker"}
	e.deliver(m)
	sent := e.ad.waitSent(t, 1)
	want := "herald cannot pass stickers to the agent yet.\nherald could not pass file big.pdf to the agent: too large (over 1000 B).\n\nre: hi"
	if !strings.HasPrefix(sent[0].Text, want) {
		t.Fatalf("reply %q, want it to start with %q", sent[0].Text, want)
	}
}

// A reply's file is fetched once, before the outbox commit: a restart
// between the download and the delivery delivers each part once, from the
// media store, without downloading again.
func TestMediaReplySurvivesRestart(t *testing.T) {
	srv := newMediaServer(t)
	mo := mediaOptions(t, true)
	e := newEnv(t, Options{Media: mo, InitialBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}, allowAll)
	e.ad.fail = []error{adapter.ErrTemporary}
	e.deliver(in("1", "c", "u", "x\nMEDIA: "+srv.URL+"/img.png"))
	testwait.For(t, "a recorded retry of the first part", func() bool {
		ob, _ := e.st.PendingOutbox(t.Context())
		return len(ob) == 2 && ob[0].Attempts == 1
	})
	e.close()
	srv.Close() // the file is not downloaded again
	e.ad = newFakeAdapter("p")
	e.ad.media = true
	e.open(Options{Media: mo}, allowAll)
	sent := e.ad.waitSent(t, 2)
	if sent[0].Text != "re: x" || sent[1].Media == nil {
		t.Fatalf("after restart %+v", sent)
	}
	if b, err := os.ReadFile(sent[1].Media.Path); err != nil || !bytes.Equal(b, pngHeader(1280, 720)) {
		t.Fatalf("file after restart: %v", err)
	}
	waitDelivered(t, e.st, 1)
	if n := len(e.ad.Sent()); n != 2 || srv.hits.Load() != 1 {
		t.Fatalf("%d sends, %d downloads", n, srv.hits.Load())
	}
}

func TestMediaUploadRefusedSendsLink(t *testing.T) {
	srv := newMediaServer(t)
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"too large": {fmt.Errorf("fake: sendPhoto: %w: 413", adapter.ErrTooLarge), "[img.png could not be attached: the file is too large for p] http://herald.test/media/"},
		"refused":   {fmt.Errorf("fake: sendPhoto: %w: wrong type", adapter.ErrPermanent), "[img.png could not be attached: fake: sendPhoto: permanent failure: wrong type] http://herald.test/media/"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
			e.ad.media = true
			e.ad.mediaErr = tc.err
			e.deliver(in("1", "c", "u", "x\n![chart]("+srv.URL+"/img.png)"))
			sent := e.ad.waitSent(t, 2)
			if sent[1].Media != nil || !strings.HasPrefix(sent[1].Text, "chart\n"+tc.want) {
				t.Fatalf("refused upload became %+v", sent[1])
			}
			if sent[1].IdempotencyKey != message.IdempotencyKey("p", "1", 2) {
				t.Fatalf("the link does not keep the part's key: %+v", sent[1])
			}
		})
	}
}

// oggOpus is the start of an Ogg/Opus voice note: enough for the sniffer.
func oggOpus() []byte {
	b := append([]byte("OggS"), make([]byte, 24)...)
	b = append(b, "OpusHead"...)
	return append(b, make([]byte, 100)...)
}

func TestMediaVoiceTranscribed(t *testing.T) {
	var transcribed atomic.Int64
	stt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.FormValue("model") != "whisper-1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		transcribed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"text":"please book the room"}`))
	}))
	defer stt.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(oggOpus()) }))
	defer files.Close()
	mo := mediaOptions(t, true)
	mo.Transcriber = &media.Transcriber{URL: stt.URL, Model: "whisper-1", Timeout: 5 * time.Second}
	e := newEnv(t, Options{Media: mo}, allowAll)
	m := in("1", "c", "u", "")
	m.Attachments = []message.Attachment{{Kind: message.MediaVoice, Ref: files.URL + "/note.ogg", Duration: 3}}
	e.deliver(m)
	e.ad.waitSent(t, 1)
	um := e.agent.Calls()[0].Messages[len(e.agent.Calls()[0].Messages)-1]
	// The transcript is the message text; the audio stays referenced next to it.
	if !strings.HasPrefix(um.Content, "please book the room\n[voice 0:03 ogg") || !strings.Contains(um.Content, "http://herald.test/media/") {
		t.Fatalf("agent content %q", um.Content)
	}
	if transcribed.Load() != 1 {
		t.Fatalf("%d transcriptions", transcribed.Load())
	}
	// Without a transcriber the agent gets the audio as a file note only.
	e2 := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
	e2.deliver(m)
	e2.ad.waitSent(t, 1)
	um = e2.agent.Calls()[0].Messages[len(e2.agent.Calls()[0].Messages)-1]
	if !strings.HasPrefix(um.Content, "[voice 0:03 ogg") || strings.Contains(um.Content, "book") {
		t.Fatalf("agent content without transcription %q", um.Content)
	}
}

func TestMediaStoreFullTellsUser(t *testing.T) {
	srv := newMediaServer(t)
	mo := mediaOptions(t, true)
	full, err := media.OpenStore(filepath.Join(t.TempDir(), "media"), 100) // smaller than the image
	if err != nil {
		t.Fatal(err)
	}
	mo.Store = full
	e := newEnv(t, Options{Media: mo}, allowAll)
	e.deliver(withAttachments(in("1", "c", "u", "look"), srv.URL, "img.png"))
	sent := e.ad.waitSent(t, 1)
	if want := "herald could not pass image img.png to the agent: herald's media store is full.\n\nre: look"; !strings.HasPrefix(sent[0].Text, want) {
		t.Fatalf("reply %q, want it to start with %q", sent[0].Text, want)
	}
	um := e.agent.Calls()[0].Messages[len(e.agent.Calls()[0].Messages)-1]
	if um.Content != "look\n[image img.png could not be fetched: herald's media store is full]" {
		t.Fatalf("agent content %q", um.Content)
	}
}

// TestMediaStoreFullPrunesAtOnce: a download that finds the store full of
// files no message refers to prunes them at once and is tried again, rather
// than failing until the next hourly prune.
func TestMediaStoreFullPrunesAtOnce(t *testing.T) {
	srv := newMediaServer(t)
	mo := mediaOptions(t, true)
	st, err := media.OpenStore(filepath.Join(t.TempDir(), "media"), 400) // room for the image, not for it and the orphan
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := st.Put(t.Context(), bytes.NewReader(make([]byte, 300)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * mediaGrace)
	if err := os.Chtimes(st.Path(orphan.SHA256), old, old); err != nil {
		t.Fatal(err)
	}
	mo.Store = st
	e := newEnv(t, Options{Media: mo}, allowAll)
	e.deliver(withAttachments(in("1", "c", "u", "look"), srv.URL, "img.png"))
	e.ad.waitSent(t, 1)
	um := e.agent.Calls()[0].Messages[len(e.agent.Calls()[0].Messages)-1]
	if !strings.HasPrefix(um.Content, "look\n[image 1280×720 png, 233 B] http://herald.test/media/") {
		t.Fatalf("agent content %q", um.Content)
	}
	if st.Has(orphan.SHA256) || st.Usage() != 233 {
		t.Fatalf("orphan kept %v, usage %d", st.Has(orphan.SHA256), st.Usage())
	}
}

// A reply part whose file this node does not hold (cluster mode: another
// node stored it, then the conversation moved here) is fetched again from
// its source and delivered once, with the file; when its source is gone or
// now gives another file, the part becomes a text line with the reason and
// the source, once, under the part's idempotency key.
func TestMediaReplyFileMissingHere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter) // the source after the move; nil: gone
		want  string
	}{
		{name: "fetched again", serve: func(w http.ResponseWriter) { w.Write(pngHeader(1280, 720)) }},
		{name: "source gone", want: "chart\n[img.png could not be sent: the file is not stored here and could not be fetched again (its source refused it)] "},
		{name: "source changed", serve: func(w http.ResponseWriter) { w.Write(pngHeader(640, 480)) },
			want: "chart\n[img.png could not be sent: the file is not stored here and its source now gives another file] "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var after atomic.Bool
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				switch {
				case !after.Load():
					w.Write(pngHeader(1280, 720))
				case tc.serve != nil:
					tc.serve(w)
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			e := newEnv(t, Options{Media: mediaOptions(t, true), InitialBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}, allowAll)
			e.ad.fail = []error{adapter.ErrTemporary}
			e.deliver(in("1", "c", "u", "x\n![chart]("+srv.URL+"/img.png)"))
			testwait.For(t, "a recorded retry of the first part", func() bool {
				ob, _ := e.st.PendingOutbox(t.Context())
				return len(ob) == 2 && ob[0].Attempts == 1
			})
			e.close()
			after.Store(true)
			// Another node: the same message store, its own media store.
			e.ad = newFakeAdapter("p")
			e.ad.media = true
			other := mediaOptions(t, true)
			e.open(Options{Media: other}, allowAll)
			sent := e.ad.waitSent(t, 2)
			waitDelivered(t, e.st, 1)
			if n := len(e.ad.Sent()); n != 2 {
				t.Fatalf("%d sends, want 2", n)
			}
			if sent[1].IdempotencyKey != message.IdempotencyKey("p", "1", 2) {
				t.Fatalf("the part lost its key: %+v", sent[1])
			}
			if hits.Load() != 2 {
				t.Fatalf("%d downloads, want the first and one again", hits.Load())
			}
			if tc.want == "" {
				if sent[1].Media == nil {
					t.Fatalf("the file was not sent: %+v", sent[1])
				}
				if b, err := os.ReadFile(sent[1].Media.Path); err != nil || !bytes.Equal(b, pngHeader(1280, 720)) || !strings.HasPrefix(sent[1].Media.Path, other.Store.Dir()) {
					t.Fatalf("file sent from %s: %v", sent[1].Media.Path, err)
				}
				return
			}
			if sent[1].Media != nil || sent[1].Text != tc.want+srv.URL+"/img.png" {
				t.Fatalf("the part became %+v, want the text %q and the source", sent[1], tc.want)
			}
		})
	}
}

// A turn run again on a node that does not hold the file its first run
// fetched (cluster mode: the conversation moved; the fetch's record is in
// the shared store) fetches it again rather than losing it.
func TestMediaInboundFileMissingHere(t *testing.T) {
	srv := newMediaServer(t)
	e := newEnv(t, Options{Media: mediaOptions(t, true)}, allowAll)
	e.agent.gate = make(chan struct{})
	e.deliver(withAttachments(in("1", "c", "u", "caption"), srv.URL, "img.png"))
	select {
	case <-e.agent.started:
	case <-time.After(testwait.Timeout):
		t.Fatal("the turn did not start")
	}
	f, err := e.st.MediaFetches(t.Context(), 1)
	if err != nil || len(f) != 1 || f[0].SHA256 == "" {
		t.Fatalf("recorded fetches %+v %v", f, err)
	}
	e.close() // the turn is interrupted: the message stays pending
	e.agent.mu.Lock()
	e.agent.gate = nil
	e.agent.mu.Unlock()
	other := mediaOptions(t, true)
	e.open(Options{Media: other}, allowAll)
	e.ad.waitSent(t, 1)
	if !other.Store.Has(f[0].SHA256) || srv.hits.Load() != 2 {
		t.Fatalf("the other node holds the file: %v; %d downloads, want 2", other.Store.Has(f[0].SHA256), srv.hits.Load())
	}
	calls := e.agent.Calls()
	um := calls[len(calls)-1].Messages[len(calls[len(calls)-1].Messages)-1]
	if !strings.Contains(um.Content, "caption\n[image 1280×720 png, 233 B] http://herald.test/media/") || len(um.Parts) != 2 {
		t.Fatalf("the re-run turn gave the agent %q, %d parts", um.Content, len(um.Parts))
	}
}

// A file of a reply over media.max_bytes says the limit it is over.
func TestOutboundReasonTooLarge(t *testing.T) {
	d := &Dispatcher{opts: Options{Media: &Media{MaxBytes: 1000}}}
	if got, want := d.outboundReason(fmt.Errorf("fetch: %w", adapter.ErrTooLarge)), "too large (over 1000 B)"; got != want {
		t.Errorf("outboundReason = %q, want %q", got, want)
	}
}
