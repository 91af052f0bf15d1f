// SPDX-License-Identifier: Apache-2.0

package matrixtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// mediaCall calls a media endpoint at path (from the root) with the token
// when auth is set, and returns the answer.
func mediaCall(t *testing.T, s *Server, method, path string, auth bool, body []byte, contentType string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errcode(b []byte) string {
	var e struct {
		Errcode string `json:"errcode"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Errcode
}

func TestMediaDownload(t *testing.T) {
	s := New(t)
	uri := s.AddMedia(Media{ContentType: "image/png", Filename: "a.png", Data: []byte("png")})
	tail := strings.TrimPrefix(uri, "mxc://")
	resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+tail, true, nil, "")
	if resp.StatusCode != 200 || string(b) != "png" || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("download: HTTP %d %q", resp.StatusCode, b)
	}
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+tail+"/a.png", true, nil, ""); resp.StatusCode != 200 || string(b) != "png" {
		t.Fatalf("download with a file name: HTTP %d", resp.StatusCode)
	}
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+tail, false, nil, ""); resp.StatusCode != 401 || errcode(b) != "M_MISSING_TOKEN" {
		t.Fatalf("without token: HTTP %d %s", resp.StatusCode, b)
	}
	// The legacy endpoint needs no token.
	if resp, b := mediaCall(t, s, "GET", "/_matrix/media/v3/download/"+tail, false, nil, ""); resp.StatusCode != 200 || string(b) != "png" {
		t.Fatalf("legacy: HTTP %d", resp.StatusCode)
	}
	s.LegacyMedia(true)
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+tail, true, nil, ""); resp.StatusCode != 404 || errcode(b) != "M_UNRECOGNIZED" {
		t.Fatalf("legacy server, new endpoint: HTTP %d %s", resp.StatusCode, b)
	}
	s.LegacyMedia(false)
	s.DeleteMedia(uri)
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+tail, true, nil, ""); resp.StatusCode != 404 || errcode(b) != "M_NOT_FOUND" {
		t.Fatalf("deleted: HTTP %d %s", resp.StatusCode, b)
	}
	big := strings.TrimPrefix(s.AddMedia(Media{TooLarge: true}), "mxc://")
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+big, true, nil, ""); resp.StatusCode != 502 || errcode(b) != "M_TOO_LARGE" {
		t.Fatalf("too large: HTTP %d %s", resp.StatusCode, b)
	}
	if n := s.MediaRequests("download"); n != 6 {
		t.Fatalf("%d downloads counted", n)
	}
}

func TestMediaSlowBody(t *testing.T) {
	s := New(t)
	uri := s.AddMedia(Media{ContentType: "audio/ogg", Data: []byte("0123456789"), Drip: 20 * time.Millisecond})
	req, _ := http.NewRequest("GET", s.URL+"/_matrix/client/v1/media/download/"+strings.TrimPrefix(uri, "mxc://"), nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n, err := resp.Body.Read(make([]byte, 10)); err != nil || n != 1 {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "123456789" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestMediaUploadAndConfig(t *testing.T) {
	s := New(t)
	resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/config", true, nil, "")
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil || resp.StatusCode != 200 || cfg["m.upload.size"] != float64(DefaultMaxUpload) {
		t.Fatalf("config: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b = mediaCall(t, s, "POST", "/_matrix/media/v3/upload?filename="+url.QueryEscape("r é.pdf"), true, []byte("%PDF"), "application/pdf")
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(out.ContentURI, "mxc://"+ServerName+"/") {
		t.Fatalf("upload: HTTP %d %s", resp.StatusCode, b)
	}
	ups := s.Uploads()
	if len(ups) != 1 || ups[0].URI != out.ContentURI || ups[0].Filename != "r é.pdf" || ups[0].ContentType != "application/pdf" || ups[0].Size != 4 {
		t.Fatalf("uploads %+v", ups)
	}
	// The upload is served like any media.
	if resp, b := mediaCall(t, s, "GET", "/_matrix/client/v1/media/download/"+strings.TrimPrefix(out.ContentURI, "mxc://"), true, nil, ""); resp.StatusCode != 200 || string(b) != "%PDF" {
		t.Fatalf("download of the upload: HTTP %d", resp.StatusCode)
	}
	s.SetMaxUpload(3)
	if resp, b := mediaCall(t, s, "POST", "/_matrix/media/v3/upload", true, []byte("%PDF"), "application/pdf"); resp.StatusCode != 413 || errcode(b) != "M_TOO_LARGE" {
		t.Fatalf("too large: HTTP %d %s", resp.StatusCode, b)
	}
	if len(s.Uploads()) != 1 {
		t.Fatal("a refused upload was recorded")
	}
}

// The sync filter's timeline types are honoured, as by a homeserver: an
// event type the filter does not ask for is not served.
func TestSyncFilterTypes(t *testing.T) {
	s := New(t)
	call(t, s, "GET", "sync?"+filter+"&timeout=0", "")
	s.Push("!r:fake.test", Event{Type: "m.sticker", Sender: "@a:fake.test", Content: map[string]any{"body": "cat"}})
	s.Text("!r:fake.test", "@a:fake.test", "hi")
	f := url.QueryEscape(`{"room":{"timeline":{"types":["m.room.message"]}}}`)
	_, m := call(t, s, "GET", "sync?filter="+f+"&since=s0&timeout=0", "")
	events := m["rooms"].(map[string]any)["join"].(map[string]any)["!r:fake.test"].(map[string]any)["timeline"].(map[string]any)["events"].([]any)
	if len(events) != 1 || events[0].(map[string]any)["type"] != "m.room.message" {
		t.Fatalf("events %v", events)
	}
}
