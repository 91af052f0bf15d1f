// SPDX-License-Identifier: Apache-2.0

package wecomtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func issue(t *testing.T, f *Fake) string {
	t.Helper()
	out := call(t, "GET", f.URL+"/cgi-bin/gettoken?"+url.Values{"corpid": {f.CorpID}, "corpsecret": {f.Secret}}.Encode(), nil)
	tok, _ := out["access_token"].(string)
	if tok == "" {
		t.Fatalf("gettoken: %v", out)
	}
	return tok
}

func TestMediaGet(t *testing.T) {
	f := New(t)
	tok := issue(t, f)
	id := f.AddMedia([]byte("\xff\xd8\xffjpeg"), "image/jpeg", "p.jpg")
	get := func(tok, id string) *http.Response {
		resp, err := http.Get(f.URL + "/cgi-bin/media/get?" + url.Values{"access_token": {tok}, "media_id": {id}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(tok, id)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "\xff\xd8\xffjpeg" || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("Content-Disposition") != `attachment; filename=p.jpg` {
		t.Fatalf("media/get: %q %v", b, resp.Header)
	}
	errcode := func(resp *http.Response) int {
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return code(out)
	}
	if c := errcode(get("nope", id)); c != 40014 {
		t.Fatalf("unknown token: %d", c)
	}
	f.ExpireMedia(id)
	if c := errcode(get(tok, id)); c != ErrCodeMediaID {
		t.Fatalf("expired media: %d", c)
	}
	f.SlowMedia(time.Hour)
	slow := f.URL + "/cgi-bin/media/get?" + url.Values{"access_token": {tok}, "media_id": {f.AddMedia([]byte("slow"), "text/plain", "s.txt")}}.Encode()
	if err := fakeserver.Stalls(slow, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func upload(t *testing.T, f *Fake, tok, typ string, data []byte) map[string]any {
	t.Helper()
	out, err := fakeserver.PostFile(f.URL+"/cgi-bin/media/upload?access_token="+tok+"&type="+typ, "media", "f.bin", data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMediaUploadAndSend(t *testing.T) {
	f := New(t)
	tok := issue(t, f)
	for _, c := range []struct {
		typ  string
		size int64
		code int
	}{
		{"image", 5, ErrCodeFileSize},
		{"image", UploadLimits["image"] + 1, ErrCodeImageSize},
		{"video", UploadLimits["video"] + 1, ErrCodeVideoSize},
		{"voice", UploadLimits["voice"] + 1, ErrCodeFileSize},
		{"file", UploadLimits["file"] + 1, ErrCodeFileSize},
	} {
		if out := upload(t, f, tok, c.typ, make([]byte, c.size)); code(out) != c.code {
			t.Errorf("%s of %d bytes: %v, want %d", c.typ, c.size, out, c.code)
		}
	}
	out := upload(t, f, tok, "image", []byte("\x89PNG image"))
	id, _ := out["media_id"].(string)
	if code(out) != 0 || id == "" || out["type"] != "image" {
		t.Fatalf("upload: %v", out)
	}
	if ups := f.Uploads(); len(ups) != 1 || ups[0].MediaID != id || ups[0].Size != 10 || ups[0].Name != "f.bin" {
		t.Fatalf("uploads %+v", ups)
	}
	send := func(body string) int {
		return code(call(t, "POST", f.URL+"/cgi-bin/message/send?access_token="+tok, []byte(body)))
	}
	if c := send(`{"touser":"zs","msgtype":"image","agentid":1000002,"image":{"media_id":"` + id + `"}}`); c != 0 {
		t.Fatalf("image send: %d", c)
	}
	if c := send(`{"touser":"zs","msgtype":"file","agentid":1000002,"file":{"media_id":"` + id + `"}}`); c != ErrCodeMediaID {
		t.Fatalf("an image id as a file: %d", c)
	}
	if s := f.Sent(); len(s) != 1 || s[0].MsgType != "image" || s[0].MediaID != id {
		t.Fatalf("sent %+v", s)
	}
}
