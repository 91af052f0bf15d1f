// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// sendAPI is a running herald with the send API on its admin socket and
// on a TCP listener with a bearer token.
type sendAPI struct {
	t     *testing.T
	dir   string
	api   string // host:port of api.listen
	token string
	recv  *webhooktest.Receiver
	p     *proc
}

func startSendAPI(t *testing.T) *sendAPI {
	t.Helper()
	s := &sendAPI{t: t, dir: t.TempDir(), api: freePort(t), token: "s3cret-token", recv: webhooktest.NewReceiver(t)}
	tok := filepath.Join(s.dir, "api-token")
	if err := os.WriteFile(tok, []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	top := fmt.Sprintf("api:\n  listen: %s\n  token: {file: %s}\n  max_body_bytes: 4096\n", s.api, tok)
	extra := "    max_message_len: 100\n    home_chat: home-1\n"
	cfg := writeConfig(t, testConfig{Dir: s.dir, ReplyURL: s.recv.URL, Top: top, Extra: extra})
	s.p = start(t, cfg, startOpts{})
	s.p.ready()
	t.Cleanup(func() {
		s.p.signal(os.Interrupt)
		s.p.wait(10 * time.Second)
	})
	return s
}

// do calls the send API on the admin socket (token "") or on the TCP
// listener with token, and returns the status and the decoded body.
func (s *sendAPI) do(method, path, token, body string) (int, map[string]any, string) {
	s.t.Helper()
	client, base := adminapi.AdminClient(filepath.Join(s.dir, "admin.sock"), 10*time.Second), "http://herald"
	if token != "" {
		client, base = &http.Client{Timeout: 10 * time.Second}, "http://"+s.api
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(b, &doc)
	return resp.StatusCode, doc, string(b)
}

// waitFinal polls GET /v1/messages/{id} until it is not pending.
func (s *sendAPI) waitFinal(id string) map[string]any {
	s.t.Helper()
	var doc map[string]any
	testwait.For(s.t, "message "+id+" delivered or failed", func() bool {
		_, doc, _ = s.do(http.MethodGet, "/v1/messages/"+id, "", "")
		return doc["status"] != "pending"
	})
	return doc
}

func TestSendAPI(t *testing.T) {
	s := startSendAPI(t)
	// The test configuration still says allow_all: true.
	s.p.waitLog(map[string]string{"msg": "platforms.webhook.allow_all is deprecated: write dm_policy: open instead"}, 10*time.Second)

	// Accepted, split at the platform's limit like a reply, delivered once.
	long := strings.Repeat("word ", 50) // 250 characters: three parts of ≤ 100
	code, doc, raw := s.do(http.MethodPost, "/v1/messages", "", fmt.Sprintf(`{"platform":"webhook","chat_id":"c1","text":%q,"idempotency_key":"k1"}`, long))
	if code != http.StatusAccepted || doc["id"] == "" || doc["status"] != "pending" {
		t.Fatalf("POST: %d %s", code, raw)
	}
	id := doc["id"].(string)
	// The same key answers the same id and sends nothing again.
	code, doc, raw = s.do(http.MethodPost, "/v1/messages", "", fmt.Sprintf(`{"platform":"webhook","chat_id":"c1","text":%q,"idempotency_key":"k1"}`, long))
	if code != http.StatusAccepted || doc["id"] != id || doc["duplicate"] != true {
		t.Fatalf("POST again with the same key: %d %s, want id %s", code, raw, id)
	}
	st := s.waitFinal(id)
	if st["status"] != "sent" || st["parts"] != 3.0 || len(st["platform_message_ids"].([]any)) != 3 {
		t.Fatalf("status %v, want sent in 3 parts", st)
	}
	var got []string
	for _, r := range s.recv.Delivered() {
		if r.ConversationID != "c1" || len([]rune(r.Text)) > 100 {
			t.Errorf("delivered %+v", r)
		}
		got = append(got, r.Text)
	}
	if len(got) != 3 || strings.Join(strings.Fields(strings.Join(got, " ")), " ") != strings.TrimSpace(long) {
		t.Fatalf("receiver got %q, want the text in 3 parts", got)
	}

	// No chat: the platform's home_chat.
	_, doc, _ = s.do(http.MethodPost, "/v1/messages", "", `{"platform":"webhook","text":"to home","idempotency_key":"k2"}`)
	if st := s.waitFinal(doc["id"].(string)); st["status"] != "sent" || st["chat_id"] != "home-1" {
		t.Fatalf("home chat send: %v", st)
	}

	// Bad requests name the field.
	for _, tc := range []struct{ body, field string }{
		{`{"platform":"nope","chat_id":"c","text":"x"}`, "platform"},
		{`{"chat_id":"c","text":"x"}`, "platform"},
		{`{"platform":"webhook","chat_id":"c","text":" "}`, "text"},
		{`{"platform":"webhook","chat_id":"c","text":"x","media":[{"url":"http://127.0.0.1/x.png"}]}`, "media"},
		{`{"platform":"webhook","chat_id":"c","text":"x","media":[{"url":"http://127.0.0.1/x.png","path":"/etc/passwd"}]}`, "media"},
		{`{"platform":"webhook","chat_id":"c","text":"x","media":[{"path":"/etc/passwd"}]}`, "media"},
	} {
		code, doc, raw := s.do(http.MethodPost, "/v1/messages", "", tc.body)
		if code != http.StatusBadRequest || doc["field"] != tc.field {
			t.Errorf("POST %s: %d %s, want 400 naming %s", tc.body, code, raw, tc.field)
		}
	}
	if code, _, raw := s.do(http.MethodGet, "/v1/messages/999999", "", ""); code != http.StatusNotFound {
		t.Errorf("GET unknown id: %d %s", code, raw)
	}

	// A platform that refuses the message (403): failed, with the reason,
	// after one attempt (the delivery policy does not retry a 403).
	s.recv.Script(webhooktest.Respond(http.StatusForbidden))
	_, doc, _ = s.do(http.MethodPost, "/v1/messages", "", `{"platform":"webhook","chat_id":"c9","text":"refused","idempotency_key":"k3"}`)
	st = s.waitFinal(doc["id"].(string))
	if st["status"] != "failed" || !strings.Contains(fmt.Sprint(st["reason"]), "403") || st["attempts"] != 1.0 {
		t.Fatalf("status after a 403: %v", st)
	}

	if n := metricValue(t, s.dir, `herald_send_requests_total{platform="webhook",result="accepted"}`); n != 3 {
		t.Errorf("accepted sends counted %v, want 3", n)
	}
	if n := metricValue(t, s.dir, `herald_send_requests_total{platform="webhook",result="duplicate"}`); n != 1 {
		t.Errorf("duplicate sends counted %v, want 1", n)
	}
	if n := metricValue(t, s.dir, `herald_send_parts_total{platform="webhook",result="failed"}`); n != 1 {
		t.Errorf("failed parts counted %v, want 1", n)
	}
	if n := metricValue(t, s.dir, `herald_send_parts_total{platform="webhook",result="sent"}`); n != 4 {
		t.Errorf("sent parts counted %v, want 4", n)
	}
}

func TestSendAPITCPListener(t *testing.T) {
	s := startSendAPI(t)
	body := `{"platform":"webhook","chat_id":"c1","text":"over tcp","idempotency_key":"t1"}`
	for _, tok := range []string{"wrong", s.token + "x", " " + s.token} {
		code, _, raw := s.do(http.MethodPost, "/v1/messages", tok, body)
		if code != http.StatusUnauthorized || strings.TrimSpace(raw) != "unauthorized" {
			t.Fatalf("token %q: %d %q, want 401 without detail", tok, code, raw)
		}
	}
	if n := metricValue(t, s.dir, `herald_send_requests_total{platform="",result="unauthorized"}`); n != 3 {
		t.Errorf("refused requests counted %v, want 3", n)
	}
	big := fmt.Sprintf(`{"platform":"webhook","chat_id":"c1","text":%q}`, strings.Repeat("x", 5000))
	if code, _, raw := s.do(http.MethodPost, "/v1/messages", s.token, big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d %s, want 413", code, raw)
	}
	code, doc, raw := s.do(http.MethodPost, "/v1/messages", s.token, body)
	if code != http.StatusAccepted {
		t.Fatalf("right token: %d %s", code, raw)
	}
	code, st, raw := s.do(http.MethodGet, "/v1/messages/"+doc["id"].(string), s.token, "")
	if code != http.StatusOK || st["id"] != doc["id"] {
		t.Fatalf("GET over TCP: %d %s", code, raw)
	}
	if code, _, _ := s.do(http.MethodGet, "/v1/messages/"+doc["id"].(string), "nope", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong token: %d, want 401", code)
	}
	s.waitFinal(doc["id"].(string))
	if d := s.recv.Delivered(); len(d) != 1 || d[0].Text != "over tcp" {
		t.Fatalf("receiver got %+v", d)
	}
}

// The command-line client: text from the arguments or standard input,
// --wait until delivered, the same --key sends once.
func TestSendCommand(t *testing.T) {
	s := startSendAPI(t)
	sock := filepath.Join(s.dir, "admin.sock")
	out, err := runHerald(t, "send", "--admin-socket", sock, "--platform", "webhook", "--chat", "c5", "--key", "cli-1", "--wait", "20s", "hello", "from", "cli")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " sent") {
		t.Fatalf("herald send: %v\n%s", err, out)
	}
	id := strings.Fields(out)[0]
	out2, err := runHerald(t, "send", "--admin-socket", sock, "--platform", "webhook", "--chat", "c5", "--key", "cli-1", "--wait", "20s", "hello", "from", "cli")
	if err != nil || strings.Fields(out2)[0] != id {
		t.Fatalf("herald send again: %v\n%s, want id %s", err, out2, id)
	}
	if d := s.recv.Delivered(); len(d) != 1 || d[0].Text != "hello from cli" {
		t.Fatalf("receiver got %+v", d)
	}
	s.recv.Script(webhooktest.Respond(http.StatusForbidden))
	cmd := runHeraldStdin(t, "from stdin", "send", "--admin-socket", sock, "--platform", "webhook", "--chat", "c6", "--wait", "20s")
	if code := exitCode(cmd.err); code != 1 || !strings.Contains(cmd.out, "failed after 1 attempts") {
		t.Fatalf("herald send to a refusing platform: exit %d\n%s", code, cmd.out)
	}
	if out, err := runHerald(t, "send", "--admin-socket", sock, "--platform", "nope", "x"); exitCode(err) != 1 || !strings.Contains(out, "platform") {
		t.Fatalf("herald send to an unknown platform: %v\n%s", err, out)
	}
}

type cmdResult struct {
	out string
	err error
}

func runHeraldStdin(t *testing.T, stdin string, args ...string) cmdResult {
	t.Helper()
	cmd := execHerald(t, args...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	out, err := cmd.CombinedOutput()
	return cmdResult{string(out), err}
}

// execHerald prepares a herald command as runHerald runs it.
func execHerald(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(heraldBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = filterEnv(os.Environ(), "NOTIFY_SOCKET", "LISTEN_", "WATCHDOG_", "INVOCATION_ID", "JOURNAL_STREAM", "MANAGERPID")
	return cmd
}

// metricValue reads one series (name{labels} exactly as exposed, labels
// sorted) from /metrics on the admin socket; 0 if absent.
func metricValue(t *testing.T, dir, series string) float64 {
	t.Helper()
	resp, err := adminapi.AdminClient(filepath.Join(dir, "admin.sock"), 5*time.Second).Get("http://herald/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// POST /v1/turns runs the turn once per key and delivers the agent's reply
// to the chat; `herald turn` is its client.
func TestTurnAPI(t *testing.T) {
	s := startSendAPI(t)
	body := `{"platform":"webhook","chat_id":"c7","user_id":"u7","text":"turn from a timer","idempotency_key":"t1"}`
	code, doc, raw := s.do(http.MethodPost, "/v1/turns", "", body)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/turns: %d %s", code, raw)
	}
	id := doc["id"].(string)
	if _, doc, _ := s.do(http.MethodPost, "/v1/turns", s.token, body); doc["id"] != id {
		t.Fatalf("the same key over TCP answered %v, want id %s", doc, id)
	}
	var st map[string]any
	testwait.For(t, "turn "+id+" done", func() bool {
		_, st, _ = s.do(http.MethodGet, "/v1/turns/"+id, "", "")
		return st["status"] != "pending"
	})
	if st["status"] != "sent" || st["chat_id"] != "c7" || st["parts"] != 1.0 {
		t.Fatalf("turn status %v", st)
	}
	if d := s.recv.Delivered(); len(d) != 1 || d[0].Text != "echo: turn from a timer" || d[0].ConversationID != "c7" || d[0].UserID != "u7" {
		t.Fatalf("receiver got %+v", d)
	}
	if code, doc, raw := s.do(http.MethodPost, "/v1/turns", "", `{"platform":"webhook","chat_id":"c7","text":"x"}`); code != http.StatusBadRequest || doc["field"] != "idempotency_key" {
		t.Fatalf("turn without a key: %d %s", code, raw)
	}
	if code, _, raw := s.do(http.MethodGet, "/v1/turns/999999", "", ""); code != http.StatusNotFound {
		t.Fatalf("GET an unknown turn: %d %s", code, raw)
	}
	out, err := runHerald(t, "turn", "--admin-socket", filepath.Join(s.dir, "admin.sock"), "--platform", "webhook", "--chat", "c8", "--key", "cli-t", "--wait", "20s", "from", "the", "cli")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " sent") {
		t.Fatalf("herald turn: %v\n%s", err, out)
	}
	testwait.For(t, "the reply of herald turn", func() bool {
		for _, r := range s.recv.Delivered() {
			if r.Text == "echo: from the cli" && r.ConversationID == "c8" {
				return true
			}
		}
		return false
	})
}
