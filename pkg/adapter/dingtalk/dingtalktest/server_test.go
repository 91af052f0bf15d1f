// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func open(t *testing.T, s *Server, secret string) (int, map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"clientId": DefaultClientID, "clientSecret": secret,
		"subscriptions": []map[string]string{{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}},
	})
	resp, err := http.Post(s.URL+"/v1.0/gateway/connections/open", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestStreamProtocol(t *testing.T) {
	s := New(t, Options{})
	if code, out := open(t, s, "wrong"); code != 401 || out["code"] != "InvalidAuthentication" {
		t.Fatalf("wrong secret: %d %v", code, out)
	}
	code, ep := open(t, s, DefaultClientSecret)
	if code != 200 || ep["endpoint"] == "" || ep["ticket"] == "" {
		t.Fatalf("open: %d %v", code, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := ep["endpoint"] + "?ticket=" + ep["ticket"]
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := websocket.Dial(ctx, u, nil); err == nil {
		t.Fatal("a used ticket was accepted")
	}
	id := s.Push(Msg{MsgID: "m1", Text: "hi"})
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Type    string            `json:"type"`
		Headers map[string]string `json:"headers"`
		Data    string            `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "CALLBACK" || f.Headers["messageId"] != id ||
		f.Headers["topic"] != "/v1.0/im/bot/messages/get" {
		t.Fatalf("frame %s: %v", b, err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(f.Data), &data); err != nil || data["msgId"] != "m1" {
		t.Fatalf("data %s: %v", f.Data, err)
	}
	if s.Pending() != 1 {
		t.Fatal("frame not pending before its ack")
	}
	ack, _ := json.Marshal(map[string]any{"code": 200, "headers": map[string]string{"contentType": "application/json", "messageId": id}, "message": "OK", "data": `{"response":null}`})
	if err := c.Write(ctx, websocket.MessageText, ack); err != nil {
		t.Fatal(err)
	}
	s.Await(t, "ack", 10*time.Second, func(s *Server) bool { return s.Acked(id) && s.Pending() == 0 })
}

func postJSON(t *testing.T, url, token string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("x-acs-dingtalk-access-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func token(t *testing.T, s *Server) string {
	t.Helper()
	_, out := postJSON(t, s.URL+"/v1.0/oauth2/accessToken", "", map[string]string{"appKey": DefaultClientID, "appSecret": DefaultClientSecret})
	tok, _ := out["accessToken"].(string)
	if tok == "" {
		t.Fatalf("token answer %v", out)
	}
	return tok
}

func TestDownloads(t *testing.T) {
	s := New(t, Options{})
	tok := token(t, s)
	code := s.AddFile([]byte("picture bytes"))
	if st, out := postJSON(t, s.URL+"/v1.0/robot/messageFiles/download", "bad", map[string]string{"downloadCode": code, "robotCode": DefaultClientID}); st != 401 {
		t.Fatalf("bad token: %d %v", st, out)
	}
	st, out := postJSON(t, s.URL+"/v1.0/robot/messageFiles/download", tok, map[string]string{"downloadCode": code, "robotCode": DefaultClientID})
	link, _ := out["downloadUrl"].(string)
	if st != 200 || link == "" {
		t.Fatalf("exchange: %d %v", st, out)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "picture bytes" {
		t.Fatalf("download: %d %q", resp.StatusCode, b)
	}
	s.ExpireLinks()
	if resp, err := http.Get(link); err != nil || resp.StatusCode != 403 {
		t.Fatalf("expired link: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	s.ExpireFile(code)
	if st, out := postJSON(t, s.URL+"/v1.0/robot/messageFiles/download", tok, map[string]string{"downloadCode": code, "robotCode": DefaultClientID}); st != 400 || out["code"] != "InvalidParameter" {
		t.Fatalf("expired code: %d %v", st, out)
	}
}

func TestSlowDownload(t *testing.T) {
	s := New(t, Options{})
	tok := token(t, s)
	s.SlowDownloads(time.Hour)
	_, out := postJSON(t, s.URL+"/v1.0/robot/messageFiles/download", tok, map[string]string{"downloadCode": s.AddFile([]byte("xy")), "robotCode": DefaultClientID})
	if err := fakeserver.Stalls(out["downloadUrl"].(string), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func upload(t *testing.T, s *Server, tok, typ string, data []byte) map[string]any {
	t.Helper()
	out, err := fakeserver.PostFile(s.URL+"/media/upload?access_token="+tok+"&type="+typ, "media", "a.png", data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUploads(t *testing.T) {
	s := New(t, Options{})
	tok := token(t, s)
	if out := upload(t, s, "bad", "image", []byte("x")); out["errcode"] != float64(ErrCodeToken) {
		t.Fatalf("bad token: %v", out)
	}
	out := upload(t, s, tok, "image", []byte("png"))
	id, _ := out["media_id"].(string)
	if out["errcode"] != float64(0) || id == "" {
		t.Fatalf("upload: %v", out)
	}
	if ups := s.Uploads(); len(ups) != 1 || ups[0].MediaID != id || ups[0].Size != 3 || ups[0].Name != "a.png" {
		t.Fatalf("uploads %+v", ups)
	}
	if out := upload(t, s, tok, "voice", make([]byte, UploadLimits["voice"]+1)); out["errcode"] != float64(ErrCodeFileSize) {
		t.Fatalf("too large: %v", out)
	}
	s.FailUploads(ErrCodeFileSize)
	if out := upload(t, s, tok, "file", []byte("x")); out["errcode"] != float64(ErrCodeFileSize) {
		t.Fatalf("scripted: %v", out)
	}
	if n := len(s.Uploads()); n != 1 {
		t.Fatalf("%d uploads recorded, want 1", n)
	}
	// The robot templates take the media_id.
	send := func(key, param string) int {
		st, _ := postJSON(t, s.URL+"/v1.0/robot/groupMessages/send", tok, map[string]string{
			"robotCode": DefaultClientID, "openConversationId": "cid", "msgKey": key, "msgParam": param})
		return st
	}
	if st := send("sampleImageMsg", `{"photoURL":"`+id+`"}`); st != 200 {
		t.Fatalf("sampleImageMsg: %d", st)
	}
	if st := send("sampleImageMsg", `{"photoURL":"@unknown"}`); st != 400 {
		t.Fatalf("unknown media id: %d", st)
	}
	if st := send("sampleFile", `{"mediaId":"`+id+`","fileName":"a.pdf","fileType":"pdf"}`); st != 400 {
		t.Fatalf("an image media id as a file: %d", st)
	}
	if sent := s.Sent(); len(sent) != 1 || sent[0].MsgKey != "sampleImageMsg" || sent[0].MediaID != id {
		t.Fatalf("sent %+v", sent)
	}
}
