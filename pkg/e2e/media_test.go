// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
)

// TestE2EMedia: under the real systemd, a photo, a document and a voice
// note on Telegram and an image on Feishu reach the agent once each (the
// images as image_url content parts, the document and the voice note as
// notes with a herald link). Then the agent answers with a Markdown image
// (a URL served on the sandbox's loopback) and a MEDIA: path under
// media.outbound_dirs. Telegram refuses sendPhoto (502) until herald has
// fetched the image and tried to upload it; `systemctl restart herald`
// runs then, and the next instance delivers the text, the photo and the
// document, each exactly once, byte for byte.
func TestE2EMedia(t *testing.T) {
	e := newEnv(t, envOpts{})
	agLn := e.loopback()
	ag := agenttest.NewOn(t, agLn)
	tg := telegramtest.NewOn(t, e.s.Listen, "")
	fsLn := e.loopback()
	const feishuSecret = "e2e-feishu-app-secret"
	fs := feishutest.New(t, feishutest.Options{AppID: "cli_e2e", AppSecret: feishuSecret, Listener: fsLn})

	// The image the agent links to, on the sandbox's loopback.
	chart := pngBytes(t, 40, 30)
	var chartFetches atomic.Int64
	chartLn := e.loopback()
	chartSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/chart.png" {
			http.NotFound(w, r)
			return
		}
		chartFetches.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(chart)
	}), ReadHeaderTimeout: 10 * time.Second}
	go chartSrv.Serve(chartLn)
	t.Cleanup(func() { chartSrv.Close() })

	// The file the agent names with MEDIA:, readable by herald's user.
	report := []byte("%PDF-1.4\n% the quarterly report\n%%EOF\n")
	e.sh("install -d -m 0755 /srv/herald-out")
	if err := e.s.WriteFile("/srv/herald-out/report.pdf", report, 0o644); err != nil {
		t.Fatal(err)
	}

	e.credential("telegram-token", tg.Token)
	e.credential("feishu-app-secret", feishuSecret)
	e.writeConfig(fmt.Sprintf(`log:
  level: debug
shutdown:
  drain_timeout: 5s
  adapter_timeout: 2s
delivery:
  initial_backoff: 100ms
  max_backoff: 1s
  max_attempts: 1000
agent:
  kind: openai
  url: %s
media:
  allow_private: true
  outbound_dirs: [/srv/herald-out]
  download_timeout: 10s
platforms:
  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: %s
    poll_timeout: 1s
  feishu:
    allow_all: true
    app_id: cli_e2e
    app_secret: {credential: feishu-app-secret}
    base_url: %s
`, ag.AgentConfig(t, "openai").URL, tg.URL, fs.URL()))
	e.startReady()

	// Inbound: a photo, a document and a voice note on Telegram, an image
	// on Feishu.
	photo := pngBytes(t, 64, 48)
	doc := []byte("%PDF-1.4\n% minutes of the meeting\n%%EOF\n")
	// An Ogg/Opus stream's first page (OpusHead), as Telegram voice notes are.
	voice := append([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0x4f}, 200)...)
	feishuImage := pngBytes(t, 32, 32)
	tg.AddFile("photo-1", telegramtest.File{Data: photo})
	tg.AddFile("doc-1", telegramtest.File{Data: doc})
	tg.AddFile("voice-1", telegramtest.File{Data: voice})
	fs.AddResource("om_img", "img_1", "image", feishutest.Resource{Data: feishuImage, ContentType: "image/png"})

	chat := telegramtest.Chat{ID: 555, Type: "private"}
	ann := telegramtest.User{ID: 555, FirstName: "Ann"}
	photoID := tg.Push(telegramtest.Update{Message: &telegramtest.Message{From: &ann, Chat: chat,
		Photo: []telegramtest.PhotoSz{{FileID: "photo-1", FileUniqueID: "u-photo-1", Width: 64, Height: 48}}}})
	from := `"from":{"id":555,"is_bot":false,"first_name":"Ann"},"chat":{"id":555,"type":"private"},"date":1760000000`
	// Once herald has confirmed the photo (a getUpdates offset past it),
	// the next updates must carry higher update_ids: Telegram never returns
	// lower ones after a confirmation.
	tg.Wait(t, sendOnceWait, "the photo confirmed", func() bool {
		for _, r := range tg.Requests("getUpdates") {
			if r.Params.Int("offset") > photoID {
				return true
			}
		}
		return false
	})
	for _, raw := range []string{
		fmt.Sprintf(`{"update_id":%d,"message":{"message_id":100,%s,"document":{"file_id":"doc-1","file_unique_id":"u-doc-1","file_name":"minutes.pdf","mime_type":"application/pdf","file_size":%d}}}`, photoID+1, from, len(doc)),
		fmt.Sprintf(`{"update_id":%d,"message":{"message_id":101,%s,"voice":{"file_id":"voice-1","file_unique_id":"u-voice-1","duration":2,"mime_type":"audio/ogg","file_size":%d}}}`, photoID+2, from, len(voice)),
	} {
		if _, err := tg.PushRaw(raw); err != nil {
			t.Fatal(err)
		}
	}
	fs.Push(feishutest.Event{MessageID: "om_img", MessageType: "image", Content: `{"image_key":"img_1"}`})

	tg.Wait(t, sendOnceWait, "a reply to each Telegram message", func() bool { return len(tg.Sent()) >= 3 })
	fs.WaitMessages(t, 1, sendOnceWait)
	e.settled()
	if n, m := len(tg.Sent()), len(fs.Messages()); n != 3 || m != 1 {
		t.Fatalf("%d Telegram and %d Feishu replies, want 3 and 1", n, m)
	}

	// Each item reached the agent once, in its form.
	reqs := ag.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d agent calls, want 4 (one per item)", len(reqs))
	}
	var docNotes, voiceNotes int
	images := map[string]int{} // sha256 of each image_url's bytes
	for _, r := range reqs {
		last := r.Body.Messages[len(r.Body.Messages)-1]
		t.Logf("to the agent: %d parts, text %q", len(last.Parts), last.Content)
		for _, p := range last.Parts {
			if p.Type != "image_url" || p.ImageURL == nil {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p.ImageURL.URL, "data:image/png;base64,"))
			if err != nil {
				t.Fatalf("image_url %.40s…: %v", p.ImageURL.URL, err)
			}
			images[sha(b)]++
		}
		if strings.HasPrefix(last.Content, "[file minutes.pdf (application/pdf, ") && strings.Contains(last.Content, "] http://127.0.0.1:8089/media/") {
			docNotes++
		}
		if strings.HasPrefix(last.Content, "[voice 0:02 ogg, ") && strings.Contains(last.Content, "] http://127.0.0.1:8089/media/") {
			voiceNotes++
		}
	}
	wantImages := map[string]int{sha(photo): 1, sha(feishuImage): 1}
	if fmt.Sprint(images) != fmt.Sprint(wantImages) || docNotes != 1 || voiceNotes != 1 {
		for _, r := range reqs {
			t.Logf("agent call: %s", r.Raw)
		}
		t.Fatalf("the agent got images %v, %d document notes, %d voice notes; want %v, 1, 1", images, docNotes, voiceNotes, wantImages)
	}
	// The note's link serves the document's bytes.
	for _, r := range reqs {
		last := r.Body.Messages[len(r.Body.Messages)-1].Content
		if !strings.Contains(last, "minutes.pdf") {
			continue
		}
		link := last[strings.Index(last, "http://"):]
		link = strings.Fields(link)[0]
		resp, err := e.http.Get(link)
		if err != nil {
			t.Fatalf("the document's link: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || sha(body) != sha(doc) {
			t.Errorf("the document's link %s: %d, sha256 %s, want 200 and %s", link, resp.StatusCode, sha(body), sha(doc))
		}
	}

	// Outbound: the agent's reply carries an image and a file; Telegram
	// refuses the photo until herald has been restarted.
	tg.Always("sendPhoto", telegramtest.ServerError())
	ag.Enqueue(agenttest.JSON(fmt.Sprintf("Here is the chart.\n\n![chart](http://%s/chart.png)\n\nMEDIA: /srv/herald-out/report.pdf", chartLn.Addr())))
	tg.PushText(chat, ann, "send me the chart")
	tg.Wait(t, sendOnceWait, "an upload attempt of the chart", func() bool { return tg.Count("sendPhoto") >= 1 })
	if chartFetches.Load() < 1 {
		t.Fatal("sendPhoto was called, the chart never fetched")
	}
	t0 := time.Now()
	e.systemctl("restart", "herald.service")
	restartTook := time.Since(t0)
	if len(tg.Uploads()) != 0 {
		t.Fatalf("uploads before the restart: %+v", tg.Uploads())
	}
	tg.Clear("sendPhoto")
	t1 := time.Now()
	tg.Wait(t, sendOnceWait, "the photo and the document", func() bool { return len(tg.Uploads()) >= 2 })
	deliveredAfter := time.Since(t1)
	e.settled()

	got := map[string]int{}
	for _, u := range tg.Uploads() {
		got[u.Method+" "+u.SHA256]++
	}
	want := map[string]int{"sendPhoto " + sha(chart): 1, "sendDocument " + sha(report): 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("uploads %v, want %v", got, want)
	}
	texts := 0
	for _, m := range tg.Sent() {
		if strings.Contains(m.Text, "Here is the chart.") {
			texts++
		}
		if strings.Contains(m.Text, "chart.png") || strings.Contains(m.Text, "report.pdf") {
			t.Errorf("a file was shown as text (a link in place of the upload): %q", m.Text)
		}
	}
	if texts != 1 {
		t.Errorf("the reply's text was shown %d times, want 1", texts)
	}
	if n := len(ag.Requests()); n != 5 {
		t.Errorf("%d agent calls, want 5: the restart must not ask the agent again", n)
	}
	if n, m := len(fs.Uploads()), len(fs.Messages()); n != 0 || m != 1 {
		t.Errorf("%d uploads and %d messages on Feishu, want 0 and 1", n, m)
	}
	t.Logf("sendPhoto refused %d times; chart fetched %d times; restart took %v; delivered %v after the restart",
		tg.Count("sendPhoto")-1, chartFetches.Load(), restartTook, deliveredAfter)
}

// loopback listens on a free port of the sandbox's 127.0.0.1.
func (e *env) loopback() net.Listener {
	e.t.Helper()
	ln, err := e.s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	return ln
}

// pngBytes encodes a w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
