// SPDX-License-Identifier: Apache-2.0

package signaltest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func rpc(t *testing.T, s *Server, body string, length int64) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/v1/rpc", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if length > 0 {
		req.ContentLength = length
		req.Body = io.NopCloser(io.MultiReader(strings.NewReader(body), strings.NewReader(strings.Repeat(" ", int(length)-len(body)))))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAttachmentsInAndOut(t *testing.T) {
	s := New(t, "+15550100")
	e := s.Message("")
	e.Attachments = []Attachment{{ContentType: "image/png", ID: "x.png", Data: []byte("png bytes")}}
	s.Push(e)
	if !strings.Contains(e.JSON(s.Account), `"attachments":[{"caption":null,"contentType":"image/png","filename":null,"height":null,"id":"x.png","size":9`) {
		t.Fatalf("envelope %s", e.JSON(s.Account))
	}
	_, out := rpc(t, s, `{"jsonrpc":"2.0","method":"getAttachment","params":{"id":"x.png","recipient":"+15550001"},"id":"1"}`, 0)
	res, _ := out["result"].(map[string]any)
	if res["data"] != base64.StdEncoding.EncodeToString([]byte("png bytes")) {
		t.Fatalf("getAttachment %v", out)
	}
	s.DeleteAttachment("x.png")
	_, out = rpc(t, s, `{"jsonrpc":"2.0","method":"getAttachment","params":{"id":"x.png","recipient":"+15550001"},"id":"2"}`, 0)
	if e, _ := out["error"].(map[string]any); e["code"] != float64(-1) {
		t.Fatalf("deleted attachment %v", out)
	}
	if s.Fetches() != 2 {
		t.Fatalf("%d fetches", s.Fetches())
	}
	send := `{"jsonrpc":"2.0","method":"send","params":{"recipient":["+15550001"],"attachments":["data:application/pdf;filename=r.pdf;base64,` +
		base64.StdEncoding.EncodeToString([]byte("%PDF")) + `"]},"id":"3"}`
	if st, out := rpc(t, s, send, 0); st != 200 || out["result"] == nil {
		t.Fatalf("send with attachment: %d %v", st, out)
	}
	if sent := s.Sent(); len(sent) != 1 || len(sent[0].Attachments) != 1 || sent[0].Attachments[0].Name != "r.pdf" ||
		sent[0].Attachments[0].MIME != "application/pdf" || sent[0].Attachments[0].Size != 4 {
		t.Fatalf("sent %+v", sent)
	}
	bad := `{"jsonrpc":"2.0","method":"send","params":{"recipient":["+15550001"],"attachments":["not a data uri"]},"id":"4"}`
	if _, out := rpc(t, s, bad, 0); out["error"] == nil {
		t.Fatalf("bad attachment accepted: %v", out)
	}
	if st, _ := rpc(t, s, send, MaxRequest+1); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("request over the limit: %d, want 413", st)
	}
}
