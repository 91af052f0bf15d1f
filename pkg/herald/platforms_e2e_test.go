// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	_ "modernc.org/sqlite" // the test opens herald's store to hold its write lock

	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// End-to-end tests, one per platform: the platform's fake on 127.0.0.1 →
// the real herald binary → agenttest → the fake again, where the reply is
// checked as the platform's user would see it.
//
// Every test waits on conditions (the fakes' recorders, herald's log,
// /status and /metrics on the admin socket), never on fixed sleeps.
//
// "Acknowledged only once stored" is checked two ways:
//   - at the moment the fake records the ack (202, offset, envelope ack,
//     heartbeat sequence number), herald's inbound counter already shows
//     the message stored;
//   - with herald's store write-locked by the test (lockStore), the fake
//     must see no ack. Where the platform redelivers, herald is then
//     SIGKILLed, which freezes what the fake saw, and the next instance
//     must answer the message the platform delivers again. The lock is
//     taken when herald is idle, since a reply sent but not yet recorded
//     is an unknown outcome after a SIGKILL (retried where the platform
//     deduplicates, looked up or resent by policy elsewhere: pkg/e2e
//     tests that), not what these tests check.

// e2eStopBound is the stop bound of e2eTemplate: drain_timeout 2s +
// adapter_timeout 1s + 2s.
const e2eStopBound = 5 * time.Second

// e2eWait bounds every wait for a condition.
const e2eWait = 20 * time.Second

const e2eTemplate = `state_dir: {{.Dir}}/state
listen:
  http: {{.HTTP}}
admin:
  socket: {{.Dir}}/admin.sock
log:
  level: debug
  format: json
shutdown:
  drain_timeout: 2s
  adapter_timeout: 1s
delivery:
  initial_backoff: 50ms
  max_backoff: 500ms
agent:
{{.Agent}}
platforms:
{{.Platform}}
`

// e2e is one herald installation under test: a directory with the
// configuration, the credential files and the state, kept across restarts.
type e2e struct {
	t        *testing.T
	dir      string
	cfg      string
	http     string
	platform string // the platform instance under test
}

func newE2E(t *testing.T, platform string) *e2e {
	t.Helper()
	return &e2e{t: t, dir: t.TempDir(), http: freePort(t), platform: platform}
}

// secret writes a credential file (mode 0600) and returns its path, for
// {file: …} in the configuration.
func (e *e2e) secret(name, value string) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "credentials")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// configure writes herald.yaml with the agent section (indented by two
// spaces, without "agent:") and the platforms section (likewise).
func (e *e2e) configure(agent, platform string) {
	e.t.Helper()
	var b strings.Builder
	err := template.Must(template.New("e2e").Parse(e2eTemplate)).Execute(&b, map[string]string{
		"Dir": e.dir, "HTTP": e.http, "Agent": strings.TrimRight(agent, "\n"), "Platform": strings.TrimRight(platform, "\n"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg = filepath.Join(e.dir, "herald.yaml")
	if err := os.WriteFile(e.cfg, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// agentYAML is the agent section for ag with the given kind (openai or
// hermes); the key, if any, is in a file.
func agentYAML(t testing.TB, ag *agenttest.Server, kind string) string {
	t.Helper()
	c := ag.AgentConfig(t, kind)
	s := fmt.Sprintf("  kind: %s\n  url: %s\n", c.Kind, c.URL)
	if c.Key.File != "" {
		s += fmt.Sprintf("  key: {file: %s}\n", c.Key.File)
	}
	return s
}

// start starts herald and waits until it is ready and the platform under
// test is connected.
func (e *e2e) start(o startOpts) *proc {
	e.t.Helper()
	p := start(e.t, e.cfg, o)
	p.ready()
	e.waitPhase("connected")
	return p
}

// waitPhase waits until /status shows the platform under test in phase.
func (e *e2e) waitPhase(phase string) herald.PlatformReport {
	e.t.Helper()
	var got herald.PlatformReport
	waitStatus(e.t, e.dir, func(s herald.StatusReport) bool {
		for _, p := range s.Platforms {
			if p.Name == e.platform && p.Phase == phase {
				got = p
				return true
			}
		}
		return false
	})
	return got
}

// stop sends SIGTERM and checks for exit 0 within the stop bound.
func (e *e2e) stop(p *proc) {
	e.t.Helper()
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(e2eStopBound + 5*time.Second); code != 0 {
		e.t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if took := time.Since(t0); took > e2eStopBound {
		e.t.Fatalf("stop took %v, bound drain_timeout 2s + adapter_timeout 1s + 2s", took)
	}
}

// waitIdle waits until herald has no turn running or queued and every
// reply is delivered and recorded: a SIGKILL then cannot make it send a
// reply again.
func (e *e2e) waitIdle() {
	e.t.Helper()
	waitStatus(e.t, e.dir, func(s herald.StatusReport) bool {
		return s.TurnsInFlight == 0 && s.QueueDepth == 0 && s.RepliesPending == 0
	})
}

// kill SIGKILLs herald and waits for it to be gone.
func (e *e2e) kill(p *proc) {
	e.t.Helper()
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// metric returns the value of a counter or gauge from herald's /metrics,
// 0 if the series does not exist yet.
func (e *e2e) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	client := herald.AdminClient(filepath.Join(e.dir, "admin.sock"), 2*time.Second)
	resp, err := client.Get("http://herald/metrics")
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if !seriesMatches(series, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			e.t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func seriesMatches(series string, labels map[string]string) bool {
	for k, v := range labels {
		if !strings.Contains(series, k+"="+strconv.Quote(v)) {
			return false
		}
	}
	return true
}

// inbound returns herald_inbound_messages_total for the platform under test
// and result (stored, duplicate, …).
func (e *e2e) inbound(result string) float64 {
	e.t.Helper()
	return e.metric("herald_inbound_messages_total", map[string]string{"platform": e.platform, "result": result})
}

// waitInbound waits until inbound(result) reaches n.
func (e *e2e) waitInbound(result string, n float64) {
	e.t.Helper()
	testwait.For(e.t, fmt.Sprintf("%s inbound messages %s ≥ %v", e.platform, result, n), func() bool { return e.inbound(result) >= n })
}

// lockStore takes the write lock of herald's store (BEGIN IMMEDIATE from
// this process): herald cannot store anything until release is called.
// release is idempotent and also runs at cleanup.
func (e *e2e) lockStore() (release func()) {
	e.t.Helper()
	path := filepath.Join(e.dir, "state", "herald.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		e.t.Fatalf("locking the store: %v", err)
	}
	release = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			e.t.Errorf("unlocking the store: %v", err)
		}
		conn.Close()
		db.Close()
	})
	e.t.Cleanup(release)
	return release
}

// doctor runs `herald doctor` against the running instance and returns
// its output and exit code.
func (e *e2e) doctor() (string, int) {
	e.t.Helper()
	out, err := runHerald(e.t, "doctor", "--config", e.cfg, "--admin-socket", filepath.Join(e.dir, "admin.sock"))
	return out, exitCode(err)
}

// logCount counts herald's log entries matching want (as waitLog).
func logCount(p *proc, want map[string]string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.lines {
		if matches(e, want) {
			n++
		}
	}
	return n
}

// waitAgent waits until the agent received n requests and returns them.
func waitAgent(t testing.TB, ag *agenttest.Server, n int) []agenttest.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := ag.WaitRequests(ctx, n); err != nil {
		t.Fatalf("%v (got %d)", err, len(ag.Requests()))
	}
	return ag.Requests()
}

// agentCalls counts the agent requests whose last user message is text.
func agentCalls(ag *agenttest.Server, text string) int {
	n := 0
	for _, r := range ag.Requests() {
		if r.LastUser() == text {
			n++
		}
	}
	return n
}

// checkHermes checks what a hermes backend needs on request r: the key,
// a session id and an idempotency key, and no history (the server keeps
// it).
func checkHermes(t testing.TB, r agenttest.Request, text string) {
	t.Helper()
	if r.Authorization != "Bearer agenttest-key" {
		t.Errorf("agent Authorization %q, want the key from the file", r.Authorization)
	}
	if r.SessionID == "" || r.IdempotencyKey == "" {
		t.Errorf("hermes request without X-Hermes-Session-Id (%q) or Idempotency-Key (%q)", r.SessionID, r.IdempotencyKey)
	}
	if r.LastUser() != text {
		t.Fatalf("agent got %q, want %q", r.LastUser(), text)
	}
	for _, m := range r.Body.Messages[:len(r.Body.Messages)-1] {
		if m.Role != "system" {
			t.Errorf("hermes request carries history %+v: the server keeps it", r.Body.Messages)
			break
		}
	}
}

// checkHistory checks that an openai request for the second message of a
// conversation carries the first exchange before the new message.
func checkHistory(t testing.TB, r agenttest.Request, first, firstReply, second string) {
	t.Helper()
	var got []string
	for _, m := range r.Body.Messages {
		if m.Role != "system" {
			got = append(got, m.Role+": "+m.Content)
		}
	}
	want := []string{"user: " + first, "assistant: " + firstReply, "user: " + second}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("openai request messages %q, want the history %q", got, want)
	}
}

// notifyListener records sd_notify datagrams without t.Setenv, so that
// parallel tests can each have one: pass NOTIFY_SOCKET=path in startOpts.
type notifyListener struct {
	path string
	conn *net.UnixConn
	done chan struct{}

	mu   sync.Mutex
	msgs []string
}

func listenNotify(t testing.TB) *notifyListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "e2e-notify") // sun_path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyListener{path: path, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		buf := make([]byte, 64<<10)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-n.done
	})
	return n
}

func (n *notifyListener) env() string { return "NOTIFY_SOCKET=" + n.path }

// find returns the first datagram containing substr.
func (n *notifyListener) find(substr string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if strings.Contains(m, substr) {
			return m, true
		}
	}
	return "", false
}

// TestE2EWebhook: a signed POST → herald → hermes → a signed reply POST to
// the receiver, which deduplicates on Idempotency-Key as a platform would.
func TestE2EWebhook(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	const inSecret, outSecret = "inbound-signing-secret", "whsec_cmVwbHktc2lnbmluZy1zZWNyZXQ="
	recv := webhooktest.NewReceiver(t, webhooktest.WithSecret(outSecret))
	e := newE2E(t, "webhook")
	e.configure(agentYAML(t, ag, "hermes"), fmt.Sprintf(`  webhook:
    allow_all: true
    secret: {file: %s}
    signature: standard
    request_timeout: 1s
    reply_url: %s
    outbound_secret: {file: %s}
`, e.secret("webhook-in", inSecret), recv.URL, e.secret("webhook-out", outSecret)))
	p := e.start(startOpts{})
	url := "http://" + e.http + "/hooks/webhook"
	send := func(id, text string) (*webhooktest.Response, error) {
		body := webhooktest.Message{ConversationID: "conv-1", UserID: "u1", Text: text}.JSON()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return webhooktest.Post(ctx, url, inSecret, body, id)
	}
	mustSend := func(id, text string, want int) *webhooktest.Response {
		t.Helper()
		r, err := send(id, text)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		if r.StatusCode != want {
			t.Fatalf("POST %s: %d %s, want %d", id, r.StatusCode, r.Body, want)
		}
		return r
	}
	delivered := func(n int) []webhooktest.Reply {
		t.Helper()
		testwait.For(t, fmt.Sprintf("%d replies delivered", n), func() bool { return len(recv.Delivered()) >= n })
		return recv.Delivered()
	}

	// A message: 202 means stored.
	if r := mustSend("wh-1", "hello webhook", http.StatusAccepted); r.ID != "wh-1" {
		t.Fatalf("202 names %q, want the delivery id wh-1", r.ID)
	}
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("202 answered while %v messages are stored, want 1", n)
	}
	checkHermes(t, waitAgent(t, ag, 1)[0], "hello webhook")
	reply := delivered(1)[0]
	if reply.Text != "agent: hello webhook" || reply.ConversationID != "conv-1" || reply.InReplyTo != "wh-1" {
		t.Fatalf("reply %+v, want the agent's answer to wh-1 in conv-1", reply)
	}

	// The sender redelivers: acknowledged again, not run again.
	mustSend("wh-1", "hello webhook", http.StatusAccepted)
	if n := e.inbound("duplicate"); n != 1 {
		t.Fatalf("redelivery counted %v duplicates, want 1", n)
	}
	if n := len(ag.Requests()); n != 1 {
		t.Fatalf("%d agent calls after a redelivery, want 1", n)
	}
	if n := len(recv.Requests()); n != 1 {
		t.Fatalf("%d reply requests after a redelivery, want 1", n)
	}

	// The conversation goes on in the same hermes session, without history.
	mustSend("wh-2", "and again", http.StatusAccepted)
	reqs := waitAgent(t, ag, 2)
	checkHermes(t, reqs[1], "and again")
	if reqs[1].SessionID != reqs[0].SessionID || reqs[1].IdempotencyKey == reqs[0].IdempotencyKey {
		t.Fatalf("second turn: session %q key %q; first: session %q key %q; want the same session, another key",
			reqs[1].SessionID, reqs[1].IdempotencyKey, reqs[0].SessionID, reqs[0].IdempotencyKey)
	}
	delivered(2)

	// SIGTERM: exit 0 within the bound. A message sent meanwhile is
	// refused (connection refused or 503): the sender keeps retrying, and
	// the next instance takes it.
	e.stop(p)
	if r, err := send("wh-3", "sent while herald is down"); err == nil && r.StatusCode == http.StatusAccepted {
		t.Fatal("a stopped herald acknowledged a message")
	}
	acked := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	go func() {
		for {
			r, err := send("wh-3", "sent while herald is down")
			if err == nil && r.StatusCode == http.StatusAccepted {
				acked <- nil
				return
			}
			select {
			case <-ctx.Done():
				acked <- fmt.Errorf("never acknowledged: %v %v", r, err)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	p = e.start(startOpts{})
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the reply to the message sent while herald was down", func() bool {
		return agentCalls(ag, "sent while herald is down") == 1 && len(recv.Delivered()) == 3
	})
	if r := recv.Delivered()[2]; r.Text != "agent: sent while herald is down" || r.InReplyTo != "wh-3" {
		t.Fatalf("reply %+v", r)
	}
	e.stop(p)
}

// TestE2EWebhookStoreLocked: while herald cannot store, the sender never
// gets a 202, and its retry once the store works again is answered once.
func TestE2EWebhookStoreLocked(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	recv := webhooktest.NewReceiver(t)
	e := newE2E(t, "webhook")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  webhook:
    allow_all: true
    secret: {file: %s}
    request_timeout: 500ms
    reply_url: %s
`, e.secret("webhook-in", "inbound-signing-secret"), recv.URL))
	p := e.start(startOpts{})
	url := "http://" + e.http + "/hooks/webhook"
	send := func() *webhooktest.Response {
		t.Helper()
		body := webhooktest.Message{ConversationID: "conv-1", UserID: "u1", Text: "stored late"}.JSON()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := webhooktest.Post(ctx, url, "inbound-signing-secret", body, "wh-locked")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	release := e.lockStore()
	if r := send(); r.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST while the store is locked: %d %s, want 500 (not stored; retry)", r.StatusCode, r.Body)
	}
	release()
	if r := send(); r.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %d %s, want 202", r.StatusCode, r.Body)
	}
	testwait.For(t, "the reply to the retried message", func() bool { return len(recv.Delivered()) == 1 })
	if n := agentCalls(ag, "stored late"); n != 1 {
		t.Fatalf("%d agent calls, want 1", n)
	}
	e.stop(p)
}

// TestE2ETelegram: Bot API long polling → herald → openai → sendMessage as
// a reply to the user's message.
func TestE2ETelegram(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := telegramtest.New(t, "")
	e := newE2E(t, "telegram")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  telegram:
    allow_all: true
    token: {file: %s}
    api_url: %s
    poll_timeout: 1s
    request_timeout: 2s
`, e.secret("telegram-token", fake.Token), fake.URL))
	p := e.start(startOpts{})

	chat := telegramtest.Chat{ID: 555, Type: "private"}
	ann := telegramtest.User{ID: 555, FirstName: "Ann"}
	update := func(id, msgID int64, text string) telegramtest.Update {
		return telegramtest.Update{UpdateID: id, Message: &telegramtest.Message{MessageID: msgID, From: &ann, Chat: chat, Text: text}}
	}
	sent := func(n int) []telegramtest.SentMessage {
		t.Helper()
		fake.Wait(t, e2eWait, fmt.Sprintf("%d messages sent", n), func() bool { return len(fake.Sent()) >= n })
		return fake.Sent()
	}
	// replies counts the replies to message msgID, as the user sees them.
	replies := func(msgID int64) int {
		n := 0
		for _, m := range fake.Sent() {
			if m.ReplyTo == msgID {
				n++
			}
		}
		return n
	}

	// A message: the offset that confirms it reaches Telegram only once it
	// is stored; the answer is a reply to it.
	first := update(0, 101, "hello telegram")
	id1 := fake.Push(first)
	fake.Wait(t, e2eWait, "update confirmed", func() bool { return fake.Confirmed() > id1 })
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("update confirmed while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello telegram" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	if m := sent(1)[0]; m.ChatID != "555" || m.Text != "agent: hello telegram" || m.ReplyTo != 101 || !m.AllowSendingWithoutReply {
		t.Fatalf("sent %+v, want the answer as a reply to message 101 in chat 555", m)
	}

	// Telegram sends the update again (as when the confirming offset was
	// lost): confirmed again, not run again.
	first.UpdateID = id1
	raw, err := json.Marshal([]telegramtest.Update{first})
	if err != nil {
		t.Fatal(err)
	}
	fake.Script("getUpdates", telegramtest.Reply{Status: http.StatusOK, Body: `{"ok":true,"result":` + string(raw) + `}`})
	e.waitInbound("duplicate", 1)
	if n := len(ag.Requests()); n != 1 {
		t.Fatalf("%d agent calls after a redelivery, want 1", n)
	}
	if n := len(fake.Sent()); n != 1 {
		t.Fatalf("%d messages sent after a redelivery, want 1", n)
	}

	// The conversation goes on: openai gets the history.
	fake.Push(update(0, 102, "second"))
	checkHistory(t, waitAgent(t, ag, 2)[1], "hello telegram", "agent: hello telegram", "second")
	sent(2)

	// Store write-locked: herald takes the update from a held poll but
	// cannot store it, so it must not confirm it. SIGKILL freezes what
	// Telegram saw; the next instance gets the update again and answers it.
	// (Idle first: a reply sent but not yet recorded would be sent again
	// after the SIGKILL, as Telegram has no idempotency key. The update is
	// pushed to a held poll, so that the poll's answer carries it.)
	e.waitIdle()
	fake.Wait(t, e2eWait, "a poll held", func() bool { return fake.Held() == 1 })
	release := e.lockStore()
	id3 := fake.Push(update(0, 103, "stored after a crash"))
	fake.Wait(t, e2eWait, "the held poll answered", func() bool { return fake.Held() == 0 })
	e.kill(p)
	if c := fake.Confirmed(); c > id3 {
		t.Fatalf("offset %d confirms update %d, which herald could not store", c, id3)
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the update herald could not store", func() bool { return replies(103) == 1 })

	// SIGTERM: exit 0 within the bound. Telegram keeps what arrives
	// meanwhile; the next instance answers it.
	e.stop(p)
	fake.Push(update(0, 104, "sent while herald is down"))
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return replies(104) == 1 })
	e.stop(p)

	for _, text := range []string{"hello telegram", "second", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	for _, id := range []int64{101, 102, 103, 104} {
		if n := replies(id); n != 1 {
			t.Errorf("message %d: %d replies shown, want 1", id, n)
		}
	}
	if fake.NegativeOffsetSeen() {
		t.Error("herald used a negative offset, which drops pending updates")
	}
}

// TestE2EFeishu: long-connection event → herald → openai → REST reply to
// the user's message.
func TestE2EFeishu(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	// Events unacknowledged for 500 ms are pushed again (the platform waits
	// 3 s), so that the store-locked phase below is short.
	fake := feishutest.New(t, feishutest.Options{RedeliverAfter: 500 * time.Millisecond})
	e := newE2E(t, "feishu")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  feishu:
    allow_all: true
    app_id: cli_test
    app_secret: {file: %s}
    base_url: %s
    request_timeout: 2s
`, e.secret("feishu-app-secret", "test-secret"), fake.URL()))
	p := e.start(startOpts{})

	// replies counts the replies to message id, as the chat shows them.
	replies := func(id string) int {
		n := 0
		for _, m := range fake.Messages() {
			if m.ReplyTo == id {
				n++
			}
		}
		return n
	}
	// allAcked: every push of ev was acknowledged.
	allAcked := func(ev string, pushes int) func() bool {
		return func() bool { d := fake.Deliveries(ev); return d >= pushes && fake.AcksFor(ev) >= d }
	}

	// A message: acknowledged only once stored; answered as a reply to it.
	ev1 := fake.Push(feishutest.Event{MessageID: "om_1", Text: "hello feishu"})
	testwait.For(t, "ack of "+ev1, func() bool { return fake.AcksFor(ev1) >= 1 })
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("event acknowledged while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello feishu" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	m := fake.WaitMessages(t, 1, e2eWait)[0]
	if m.ReplyTo != "om_1" || m.Text != "agent: hello feishu" || m.MsgType != "text" || m.UUID == "" {
		t.Fatalf("chat shows %+v, want the answer as a reply to om_1 with a uuid", m)
	}

	// The platform pushes the event again (same event_id, as after a lost
	// ack): acknowledged, not run again.
	fake.Push(feishutest.Event{EventID: ev1, MessageID: "om_1", Text: "hello feishu"})
	testwait.For(t, "both pushes of "+ev1+" acknowledged", allAcked(ev1, 2))
	if n := e.inbound("duplicate"); n < 1 {
		t.Fatalf("redelivery counted %v duplicates", n)
	}
	if n, r := len(ag.Requests()), len(fake.Messages()); n != 1 || r != 1 {
		t.Fatalf("after a redelivery: %d agent calls, %d messages shown; want 1 and 1", n, r)
	}

	// The conversation goes on: openai gets the history.
	fake.Push(feishutest.Event{MessageID: "om_2", Text: "second"})
	checkHistory(t, waitAgent(t, ag, 2)[1], "hello feishu", "agent: hello feishu", "second")
	testwait.For(t, "the reply to om_2", func() bool { return replies("om_2") == 1 })

	// Store write-locked: no ack, so the platform pushes the event again;
	// SIGKILL freezes what it saw, and the next instance gets the event
	// (the platform redelivers unacknowledged events to the next
	// connection) and answers it.
	e.waitIdle()
	release := e.lockStore()
	ev3 := fake.Push(feishutest.Event{MessageID: "om_3", Text: "stored after a crash"})
	fake.WaitDeliveries(t, ev3, 2, e2eWait)
	e.kill(p)
	fake.WaitLive(t, 0, e2eWait)
	if n := fake.AcksFor(ev3); n != 0 {
		t.Fatalf("%d acks for an event herald could not store", n)
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the reply to om_3", func() bool { return replies("om_3") == 1 })

	// SIGTERM: exit 0 within the bound, closing the connection with 1000.
	// An event for the app meanwhile waits for the next connection.
	e.stop(p)
	fake.WaitLive(t, 0, e2eWait)
	if codes := fake.CloseCodes(); len(codes) == 0 || codes[len(codes)-1] != 1000 {
		t.Errorf("close codes %v, want 1000 at stop", codes)
	}
	fake.Push(feishutest.Event{MessageID: "om_4", Text: "sent while herald is down"})
	p = e.start(startOpts{})
	testwait.For(t, "the reply to om_4", func() bool { return replies("om_4") == 1 })
	e.stop(p)

	for _, text := range []string{"hello feishu", "second", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	for _, id := range []string{"om_1", "om_2", "om_3", "om_4"} {
		if n := replies(id); n != 1 {
			t.Errorf("%s: %d replies shown, want 1", id, n)
		}
	}
}

// TestE2ELark: the lark type (a section named lark, domain lark) against
// the same fake, with a hermes backend: one message and its reply.
func TestE2ELark(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := feishutest.New(t, feishutest.Options{})
	e := newE2E(t, "lark")
	e.configure(agentYAML(t, ag, "hermes"), fmt.Sprintf(`  lark:
    allow_all: true
    app_id: cli_test
    app_secret: {file: %s}
    base_url: %s
`, e.secret("lark-app-secret", "test-secret"), fake.URL()))
	p := e.start(startOpts{})
	if pr := e.waitPhase("connected"); pr.Type != "lark" {
		t.Fatalf("platform type %q, want lark", pr.Type)
	}
	ev := fake.Push(feishutest.Event{MessageID: "om_l1", ChatID: "oc_lark", Text: "hello lark"})
	checkHermes(t, waitAgent(t, ag, 1)[0], "hello lark")
	m := fake.WaitMessages(t, 1, e2eWait)[0]
	if m.ReplyTo != "om_l1" || m.Text != "agent: hello lark" {
		t.Fatalf("chat shows %+v, want the answer as a reply to om_l1", m)
	}
	testwait.For(t, "ack of "+ev, func() bool { return fake.AcksFor(ev) >= 1 })
	e.stop(p)
}

// TestE2ESlack: Socket Mode envelope → herald → openai → chat.postMessage
// in a thread under the mention.
func TestE2ESlack(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	// Unacknowledged envelopes come again after 500 ms (Slack: 3 s), and
	// often enough to survive the restarts below.
	fake := slacktest.New(slacktest.Options{RedeliverAfter: 500 * time.Millisecond, MaxRetries: 20})
	t.Cleanup(fake.Close)
	e := newE2E(t, "slack")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  slack:
    allow_all: true
    app_token: {file: %s}
    bot_token: {file: %s}
    api_url: %s
    request_timeout: 2s
`, e.secret("slack-app", fake.AppToken()), e.secret("slack-bot", fake.BotToken()), fake.APIURL()))
	p := e.start(startOpts{})

	mention := func(ts, threadTS, text string) slacktest.Pushed {
		return fake.PushEvent(slacktest.Event{Type: "app_mention", Channel: "C1", User: "U1", Text: "<@" + fake.BotUserID() + "> " + text, TS: ts, ThreadTS: threadTS})
	}
	// inThread counts the messages posted in thread ts of C1.
	inThread := func(ts string) int {
		n := 0
		for _, m := range fake.Messages() {
			if m.Channel == "C1" && m.ThreadTS == ts {
				n++
			}
		}
		return n
	}
	acked := func(eventID string) bool {
		for _, a := range fake.Acks() {
			if a.EventID == eventID {
				return true
			}
		}
		return false
	}

	// A mention: acknowledged only once stored; answered in a thread under
	// it, the mention removed from what the agent reads.
	const ts1 = "1690000000.000101"
	ev1 := mention(ts1, "", "hello slack")
	fake.WaitAck(t, ev1.EventID, e2eWait)
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("envelope acknowledged while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello slack" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	if m := fake.WaitMessages(t, 1, e2eWait)[0]; m.Channel != "C1" || m.ThreadTS != ts1 || m.Display() != "agent: hello slack" {
		t.Fatalf("posted %+v, want the answer in the thread of %s", m, ts1)
	}

	// Slack redelivers the envelope (retry_attempt 1, as when an ack is
	// lost): acknowledged, not run again.
	fake.Redeliver(ev1.EventID)
	testwait.For(t, "ack of the redelivery", func() bool {
		for _, a := range fake.Acks() {
			if a.EventID == ev1.EventID && a.RetryAttempt >= 1 {
				return true
			}
		}
		return false
	})
	if n := e.inbound("duplicate"); n < 1 {
		t.Fatalf("redelivery counted %v duplicates", n)
	}
	if n, r := len(ag.Requests()), len(fake.Messages()); n != 1 || r != 1 {
		t.Fatalf("after a redelivery: %d agent calls, %d messages posted; want 1 and 1", n, r)
	}

	// A follow-up mention in the thread: same session, openai gets the
	// history, the answer stays in the thread.
	mention("1690000000.000102", ts1, "second")
	checkHistory(t, waitAgent(t, ag, 2)[1], "hello slack", "agent: hello slack", "second")
	testwait.For(t, "the answer in the thread", func() bool { return inThread(ts1) == 2 })

	// Store write-locked: herald reads the envelope (Sync: it answered a
	// ping sent after it) but cannot store it, so it must not acknowledge
	// it. SIGKILL freezes what Slack saw; Slack redelivers to the next
	// connection and herald answers.
	e.waitIdle()
	live := fake.Live()
	release := e.lockStore()
	const ts3 = "1690000000.000103"
	ev3 := mention(ts3, "", "stored after a crash")
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := fake.Sync(ctx, live[len(live)-1]); err != nil {
		t.Fatal(err)
	}
	e.kill(p)
	testwait.For(t, "the connection gone", func() bool { return fake.Conns() == 0 })
	if acked(ev3.EventID) {
		t.Fatal("an envelope herald could not store was acknowledged")
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the answer to the envelope herald could not store", func() bool { return inThread(ts3) == 1 })

	// SIGTERM: exit 0 within the bound, closing with 1000. Slack keeps the
	// event that arrives meanwhile and delivers it to the next connection.
	live = fake.Live()
	e.stop(p)
	if code := fake.WaitClosed(t, live[len(live)-1], e2eWait); code != 1000 {
		t.Errorf("connection closed with %v at stop, want 1000", code)
	}
	const ts4 = "1690000000.000104"
	mention(ts4, "", "sent while herald is down")
	p = e.start(startOpts{})
	testwait.For(t, "the answer to the event sent while herald was down", func() bool { return inThread(ts4) == 1 })
	e.stop(p)

	for _, text := range []string{"hello slack", "second", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	if n := len(fake.Messages()); n != 4 {
		t.Errorf("%d messages posted, want 4: %+v", n, fake.Messages())
	}
}

// TestE2EDiscord: gateway MESSAGE_CREATE → herald → hermes → REST create as
// a reply (message_reference, nonce, no pings).
func TestE2EDiscord(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	// Short heartbeats: they carry herald's "handled" sequence number,
	// Discord's stand-in for an ack.
	fake := discordtest.New(t, discordtest.Options{HeartbeatInterval: 200 * time.Millisecond})
	e := newE2E(t, "discord")
	e.configure(agentYAML(t, ag, "hermes"), fmt.Sprintf(`  discord:
    allow_all: true
    token: {file: %s}
    api_url: %s
    request_timeout: 2s
`, e.secret("discord-token", fake.Token), fake.APIURL))
	p := e.start(startOpts{})

	replies := func(id string) int {
		n := 0
		for _, m := range fake.Messages() {
			if m.ReplyTo == id {
				n++
			}
		}
		return n
	}
	handled := func(seq int64) func() bool {
		return func() bool {
			for _, hb := range fake.Heartbeats() {
				if hb.Seq >= seq {
					return true
				}
			}
			return false
		}
	}

	// A direct message: heartbeats carry its sequence number only once it
	// is stored; the answer is a reply to it that pings nobody.
	id1, seq1 := fake.PushMessage(discordtest.Msg{Content: "hello discord"})
	fake.Await(t, "a heartbeat confirming the message", e2eWait, handled(seq1))
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("sequence %d confirmed while %v messages are stored, want 1", seq1, n)
	}
	checkHermes(t, waitAgent(t, ag, 1)[0], "hello discord")
	fake.Await(t, "the reply", e2eWait, func() bool { return len(fake.Messages()) == 1 })
	if m := fake.Messages()[0]; m.ReplyTo != id1 || m.Content != "agent: hello discord" || !m.EnforceNonce || m.Nonce == "" ||
		strings.ReplaceAll(string(m.AllowedMentions), " ", "") != `{"parse":[]}` {
		t.Fatalf("channel shows %+v, want the answer as a reply to %s with an enforced nonce and no pings", m, id1)
	}

	// Discord replays the message (same id, as on a resume): handled, not
	// run again.
	seq2 := fake.Push("MESSAGE_CREATE", fake.MessageData(discordtest.Msg{ID: id1, Content: "hello discord"}))
	fake.Await(t, "a heartbeat confirming the replay", e2eWait, handled(seq2))
	if n := e.inbound("duplicate"); n != 1 {
		t.Fatalf("replay counted %v duplicates, want 1", n)
	}
	if n, r := len(ag.Requests()), len(fake.Messages()); n != 1 || r != 1 {
		t.Fatalf("after a replay: %d agent calls, %d messages shown; want 1 and 1", n, r)
	}

	// Store write-locked: herald must not confirm the message. Its gateway
	// reader waits for the store, so it reads no heartbeat ACK and takes
	// the connection for a zombie (its log says so: evidence that it holds
	// the message). SIGKILL freezes what Discord saw; the session, saved in
	// the state directory with the last stored sequence number, outlives
	// the process: the next instance resumes it, Discord replays the
	// message, and herald answers it once.
	e.waitIdle()
	zombie := map[string]string{"platform": "discord", "msg": "zombie"}
	zombies := logCount(p, zombie)
	release := e.lockStore()
	id3, seq3 := fake.PushMessage(discordtest.Msg{Content: "stored after a crash"})
	testwait.For(t, "herald's gateway reader stuck on the message", func() bool { return logCount(p, zombie) > zombies })
	e.kill(p)
	fake.Await(t, "the connection gone", e2eWait, func() bool { return !fake.Live() })
	for _, h := range fake.Heartbeats() {
		if h.Seq >= seq3 {
			t.Fatalf("heartbeat confirms sequence %d while herald could not store message %d", h.Seq, seq3)
		}
	}
	release()
	resumes := len(fake.Resumes())
	p = e.start(startOpts{})
	if len(fake.Resumes()) == resumes {
		t.Fatal("the restarted herald did not resume the saved session")
	}
	if r := fake.Resumes()[resumes]; r.Seq >= seq3 {
		t.Fatalf("resume from sequence %d: message %d was never stored", r.Seq, seq3)
	}
	fake.Await(t, "the reply to the message herald could not store", e2eWait, func() bool { return replies(id3) == 1 })

	// SIGTERM: exit 0 within the bound, closing with 4000, which keeps the
	// session resumable. A message sent while herald is down waits in the
	// session; the next instance resumes and answers it.
	e.stop(p)
	fake.Await(t, "the close frame", e2eWait, func() bool { return !fake.Live() })
	if c := fake.ClientCloses(); len(c) == 0 || c[len(c)-1] != 4000 {
		t.Errorf("client close codes %v, want 4000 (resumable) at stop", c)
	}
	resumes = len(fake.Resumes())
	idA, _ := fake.PushMessage(discordtest.Msg{Content: "sent while herald is down"})
	p = e.start(startOpts{})
	if len(fake.Resumes()) == resumes {
		t.Fatal("the restarted herald did not resume the saved session")
	}
	fake.Await(t, "the reply to the message sent while herald was down", e2eWait, func() bool { return replies(idA) == 1 })
	e.stop(p)

	for _, text := range []string{"hello discord", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	if n := len(fake.Messages()); n != 3 {
		t.Errorf("%d messages shown, want 3: %+v", n, fake.Messages())
	}
}

// TestE2EBadCredentials: a platform whose credential the fake rejects never
// blocks herald: READY=1 is sent, /status shows the platform fatal, `herald
// doctor` reports it as FAIL, SIGTERM still exits 0, and the credential
// appears nowhere in herald's output.
func TestE2EBadCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// platform starts the fake and returns the platform section with a
		// credential it rejects, and that credential.
		platform func(t *testing.T, e *e2e) (yaml, bad string)
	}{
		{"telegram", func(t *testing.T, e *e2e) (string, string) {
			fake := telegramtest.New(t, "")
			const bad = "999999:WRONG-token_0123456789abcdef"
			return fmt.Sprintf("  telegram:\n    allow_all: true\n    token: {file: %s}\n    api_url: %s\n    poll_timeout: 1s\n",
				e.secret("telegram-token", bad), fake.URL), bad
		}},
		{"feishu", func(t *testing.T, e *e2e) (string, string) {
			fake := feishutest.New(t, feishutest.Options{})
			const bad = "wrong-app-secret"
			return fmt.Sprintf("  feishu:\n    allow_all: true\n    app_id: cli_test\n    app_secret: {file: %s}\n    base_url: %s\n",
				e.secret("feishu-app-secret", bad), fake.URL()), bad
		}},
		{"slack", func(t *testing.T, e *e2e) (string, string) {
			fake := slacktest.New(slacktest.Options{})
			t.Cleanup(fake.Close)
			const bad = "xapp-1-A1-revoked"
			return fmt.Sprintf("  slack:\n    allow_all: true\n    app_token: {file: %s}\n    bot_token: {file: %s}\n    api_url: %s\n",
				e.secret("slack-app", bad), e.secret("slack-bot", fake.BotToken()), fake.APIURL()), bad
		}},
		{"discord", func(t *testing.T, e *e2e) (string, string) {
			fake := discordtest.New(t, discordtest.Options{})
			const bad = "revoked-discord-token"
			return fmt.Sprintf("  discord:\n    allow_all: true\n    token: {file: %s}\n    api_url: %s\n",
				e.secret("discord-token", bad), fake.APIURL), bad
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, tt.name)
			yaml, bad := tt.platform(t, e)
			e.configure("  kind: echo\n", yaml)
			n := listenNotify(t)
			p := start(t, e.cfg, startOpts{env: []string{n.env()}})
			p.ready()
			testwait.For(t, "READY=1", func() bool { _, ok := n.find("READY=1"); return ok })
			pr := e.waitPhase("fatal")
			if pr.Error == "" {
				t.Errorf("fatal platform without an error in /status: %+v", pr)
			}
			out, code := e.doctor()
			if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform "+tt.name) {
				t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform %s:\n%s", code, herald.ExitFailure, tt.name, out)
			}
			e.stop(p)
			if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
				t.Errorf("the rejected credential appears in herald's output")
			}
		})
	}
}

// TestE2EWebhookBadCredentials: the webhook platform holds no connection,
// so a wrong secret cannot make it fatal (and doctor cannot see it): a
// request signed with another secret is refused with 401, a reply the
// receiver refuses (401: outbound_secret wrong) is given up on and logged,
// herald stays READY with the platform connected, and SIGTERM exits 0.
func TestE2EWebhookBadCredentials(t *testing.T) {
	t.Parallel()
	recv := webhooktest.NewReceiver(t, webhooktest.WithSecret("whsec_cmVjZWl2ZXItc2VjcmV0"))
	e := newE2E(t, "webhook")
	e.configure("  kind: echo\n", fmt.Sprintf(`  webhook:
    allow_all: true
    secret: {file: %s}
    reply_url: %s
    outbound_secret: {file: %s}
`, e.secret("webhook-in", "inbound-signing-secret"), recv.URL, e.secret("webhook-out", "whsec_c29tZS1vdGhlci1zZWNyZXQ=")))
	n := listenNotify(t)
	p := start(t, e.cfg, startOpts{env: []string{n.env()}})
	p.ready()
	testwait.For(t, "READY=1", func() bool { _, ok := n.find("READY=1"); return ok })
	e.waitPhase("connected")
	url := "http://" + e.http + "/hooks/webhook"
	body := webhooktest.Message{ConversationID: "c1", UserID: "u1", Text: "hello"}.JSON()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := webhooktest.Post(ctx, url, "not-the-secret", body, "wh-forged"); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request signed with another secret: %v %v, want 401", r, err)
	}
	if r, err := webhooktest.Post(ctx, url, "inbound-signing-secret", body, "wh-1"); err != nil || r.StatusCode != http.StatusAccepted {
		t.Fatalf("signed request: %v %v, want 202", r, err)
	}
	p.waitLog(map[string]string{"msg": "giving up on a reply", "platform": "webhook"}, e2eWait)
	reqs := recv.Requests()
	if len(reqs) != 1 || reqs[0].Status != http.StatusUnauthorized || len(recv.Delivered()) != 0 {
		t.Fatalf("receiver saw %d requests (%+v), want one refused with 401 and nothing delivered", len(reqs), reqs)
	}
	out, _ := e.doctor()
	if hasLine(out, "FAIL", "platform webhook") {
		t.Errorf("doctor reports the webhook platform failed; it cannot know:\n%s", out)
	}
	e.waitPhase("connected")
	e.stop(p)
}

// hasLine reports whether a line of out contains every one of words.
func hasLine(out string, words ...string) bool {
next:
	for _, line := range strings.Split(out, "\n") {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		return true
	}
	return false
}
