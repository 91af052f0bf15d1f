// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/logging"
)

// catalogBody returns the body of id's entry in packaging/herald.catalog.
func catalogBody(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "herald.catalog"))
	if err != nil {
		t.Fatal(err)
	}
	_, entry, ok := strings.Cut(string(b), "\n-- "+id+"\n")
	if !ok {
		t.Fatalf("no catalog entry %s", id)
	}
	entry, _, _ = strings.Cut(entry, "\n-- ")
	_, body, _ := strings.Cut(entry, "\n\n") // headers, then the body
	return body
}

var substRE = regexp.MustCompile(`@([A-Z0-9_]+)@`)

// render fills a catalog body's @FIELD@ from a logged entry, as journalctl
// -x does with the entry's journal fields.
func render(body string, entry map[string]any) string {
	return substRE.ReplaceAllStringFunc(body, func(m string) string {
		name := strings.Trim(m, "@")
		for k, v := range entry {
			if logging.FieldName(k) == name {
				return fmt.Sprint(v)
			}
		}
		return m
	})
}

// What the operator needs is in the visible text: the catalog entry of the
// start event reads well with the fields herald logs, and a refused
// message's line names the sender to add and where.
func TestJournalTextNamesWhatMatters(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir, Extra: `  gated:
    type: webhook
    insecure_no_signature: true
    allowed_users: [alice]
`})
	p := start(t, cfg, startOpts{})
	starting := p.waitLog(map[string]string{"message_id": logging.MsgStarting}, 30*time.Second)
	text := render(catalogBody(t, logging.MsgStarting), starting)
	if strings.Contains(text, "herald herald") || strings.Contains(text, "@") {
		t.Errorf("catalog entry of the start event renders as:\n%s", text)
	}
	addr := p.ready()

	body := `{"conversation_id":"c1","user_id":"mallory-42","text":"hi"}`
	if code, err := postTo(addr, "/hooks/gated", "refused-1", body); err != nil || code/100 != 2 {
		t.Fatalf("POST: %d %v", code, err)
	}
	refused := p.waitLog(map[string]string{"sender": "mallory-42"}, 15*time.Second)
	msg := fmt.Sprint(refused["msg"])
	if !strings.Contains(msg, `"mallory-42"`) || !strings.Contains(msg, "platforms.gated.allowed_users") {
		t.Errorf("refusal line %q does not name the sender and the key to add it to", msg)
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
}

// postTo posts a webhook body to path with the given delivery id.
func postTo(addr, path, id, body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A secret written inline into the file is never repeated by a rejected
// reload: not in `herald reload`'s answer, not in the log, not in
// last_reload_error, which every local user can read through /status.
func TestRejectedReloadDoesNotRepeatInlineSecret(t *testing.T) {
	const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir})
	p := start(t, cfg, startOpts{})
	p.ready()
	writeConfig(t, testConfig{Dir: dir, Extra: "  tg:\n    type: telegram\n    allow_all: true\n    token: " + token + "\n"})
	out, err := runHerald(t, "reload", "--admin-socket", filepath.Join(dir, "admin.sock"))
	if err == nil {
		t.Fatalf("reload of a file with an inline token succeeded:\n%s", out)
	}
	st := waitStatus(t, dir, func(s adminapi.StatusReport) bool { return s.LastReloadError != "" })
	if !strings.Contains(st.LastReloadError, "platforms.tg.token: expected a mapping, got a string (44 bytes)") {
		t.Errorf("last_reload_error %q does not say what is wrong", st.LastReloadError)
	}
	for what, text := range map[string]string{"reload output": out, "last_reload_error": st.LastReloadError, "log": p.output()} {
		if strings.Contains(text, token) || strings.Contains(text, "AAHdqT") {
			t.Errorf("%s repeats the secret:\n%s", what, text)
		}
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
}
