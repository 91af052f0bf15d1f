// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
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
