// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/telegram"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
)

// The send API under the real systemd: many POST /v1/messages to the
// webhook platform's receiver and to the Telegram fake (both served in the
// sandbox's network namespace) while herald.service is restarted three
// times and SIGKILLed once. Callers retry with the same idempotency key
// until they get a 202, as the API asks. Every message must end `sent`,
// none `pending`, and each must reach its platform once.

// sendMessages is how many messages the test sends.
const sendMessages = 1000

const sendAPIToken = "e2e-send-api-token"

// apiPost posts body to the send API with the token and returns the status
// and the decoded answer; err for a failed connection.
func (e *env) apiPost(body string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, "http://127.0.0.1:8090/v1/messages", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sendAPIToken)
	return e.apiDo(req)
}

func (e *env) apiGet(id string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, "http://127.0.0.1:8090/v1/messages/"+id, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sendAPIToken)
	return e.apiDo(req)
}

func (e *env) apiDo(req *http.Request) (int, map[string]any, error) {
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(b, &doc)
	return resp.StatusCode, doc, nil
}

// waitSent polls GET /v1/messages/{id} until the message is no longer
// pending, retrying through restarts.
func (e *env) waitFinal(id string, timeout time.Duration) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var doc map[string]any
	for {
		code, d, err := e.apiGet(id)
		if err == nil && code == http.StatusOK {
			doc = d
			if d["status"] != "pending" {
				return d
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %s not final within %v: %v (last error %v)", id, timeout, doc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSendAPIRestartsAndSIGKILL(t *testing.T) {
	e := newEnv(t, envOpts{})
	recv := webhooktest.NewReceiver(t, webhooktest.WithListen(e.s.Listen))
	fake := telegramtest.NewOn(t, e.s.Listen, "")
	e.credential("telegram-token", fake.Token)
	e.credential("herald-api", sendAPIToken)
	e.writeConfig(fmt.Sprintf(`log:
  level: info
shutdown:
  drain_timeout: 5s
  adapter_timeout: 2s
delivery:
  initial_backoff: 100ms
  max_backoff: 1s
api:
  listen: 127.0.0.1:8090
  token: {credential: herald-api}
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: %s
  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: %s
    poll_timeout: 5s
`, recv.URL, fake.URL))
	e.startReady()

	// Senders: each message is posted until herald answers 202; the same
	// key across attempts makes a retry after a lost answer harmless.
	ids := make([]string, sendMessages)
	var accepted, retries atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	failed := make(chan string, 1)
	start := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := sendBody(i)
				deadline := time.Now().Add(3 * sendOnceWait)
				for {
					code, doc, err := e.apiPost(body)
					if err == nil && code == http.StatusAccepted {
						ids[i] = doc["id"].(string)
						accepted.Add(1)
						break
					}
					if err == nil && code != http.StatusServiceUnavailable {
						select {
						case failed <- fmt.Sprintf("message %d: HTTP %d %v", i, code, doc):
						default:
						}
						return
					}
					if time.Now().After(deadline) {
						select {
						case failed <- fmt.Sprintf("message %d: not accepted within %v: %v %v", i, 3*sendOnceWait, code, err):
						default:
						}
						return
					}
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	go func() {
		for i := 0; i < sendMessages; i++ {
			work <- i
		}
		close(work)
	}()

	// Three restarts and a SIGKILL while messages come in and go out.
	for k, at := range []int64{sendMessages / 5, 2 * sendMessages / 5, 3 * sendMessages / 5, 4 * sendMessages / 5} {
		e.waitAccepted(&accepted, at, failed)
		if k < 3 {
			e.systemctl("restart", "herald.service")
			e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, sendOnceWait)
			continue
		}
		e.killDuringSend(func() {})
	}
	wg.Wait()
	select {
	case f := <-failed:
		t.Fatal(f)
	default:
	}
	took := time.Since(start)

	// Every message ends sent; none stays pending.
	for i, id := range ids {
		if st := e.waitFinal(id, sendOnceWait); st["status"] != "sent" {
			t.Fatalf("message %d (%s): %v", i, id, st)
		}
	}
	t.Logf("%d messages accepted and sent in %v (%d posts retried through the restarts)", sendMessages, took.Round(time.Millisecond), retries.Load())

	// The webhook receiver got each of its messages once.
	seen := map[string]int{}
	for _, r := range recv.Delivered() {
		seen[r.Text]++
	}
	// Telegram cannot deduplicate: a send cut by the SIGKILL is sent again
	// marked (interrupted_send: resend_marked), which the user can tell.
	marked := 0
	for c := 0; c < 3; c++ {
		for _, text := range fake.Transcript(fmt.Sprint(7000 + c)) {
			if strings.HasPrefix(text, telegram.RecoveredMark) {
				marked++
				continue
			}
			seen[text]++
		}
	}
	for i := 0; i < sendMessages; i++ {
		if n := seen[sendText(i)]; n != 1 {
			t.Errorf("message %d reached its platform %d times, want 1", i, n)
		}
	}
	if len(seen) != sendMessages {
		t.Errorf("%d distinct texts delivered, want %d", len(seen), sendMessages)
	}
	if marked > 3 {
		t.Errorf("%d marked resends on Telegram, at most one per chat can be cut by one SIGKILL", marked)
	}
	t.Logf("webhook receiver answered %d retried deliveries from its idempotency record; %d marked Telegram resends", recv.Duplicates(), marked)

	// A platform that refuses the message (403): failed, with the reason.
	fake.Script("sendMessage", telegramtest.Blocked())
	code, doc, err := e.apiPost(`{"platform":"telegram","chat_id":"7999","text":"to a user who blocked the bot","idempotency_key":"blocked-1"}`)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST: %d %v %v", code, doc, err)
	}
	st := e.waitFinal(doc["id"].(string), sendOnceWait)
	if st["status"] != "failed" || !strings.Contains(fmt.Sprint(st["reason"]), "blocked") {
		t.Fatalf("send refused with 403: %v, want failed with the reason", st)
	}
}

func sendText(i int) string { return fmt.Sprintf("message %04d", i) }

// sendBody is message i: even ones to the webhook receiver (5 chats), odd
// ones to Telegram (3 chats).
func sendBody(i int) string {
	platform, chat := "webhook", fmt.Sprintf("c%d", i%5)
	if i%2 == 1 {
		platform, chat = "telegram", fmt.Sprint(7000+i%3)
	}
	return fmt.Sprintf(`{"platform":%q,"chat_id":%q,"text":%q,"idempotency_key":"k-%d"}`, platform, chat, sendText(i), i)
}

// waitAccepted waits until n messages were accepted.
func (e *env) waitAccepted(accepted *atomic.Int64, n int64, failed chan string) {
	e.t.Helper()
	deadline := time.Now().Add(3 * sendOnceWait)
	for accepted.Load() < n {
		select {
		case f := <-failed:
			e.t.Fatal(f)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d messages accepted, waiting for %d", accepted.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
