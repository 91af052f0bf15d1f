// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
)

// Agent turns across restarts with kind hermes on the Runs API: a fake
// Hermes (agenttest.Runs) and a fake Telegram, both served in the sandbox's
// network namespace from this test process, so they outlive every restart
// of herald.service. Each test counts the executions the fake saw and the
// replies the user got.

// runsWait bounds each wait for something to happen.
const runsWait = 90 * time.Second

// runsInput is a message whose run answers with ten words, one a second:
// a ten-second run.
const runsInput = "one two three four five six seven eight nine"

// runsEnv is herald with a Telegram chat and kind hermes on a fake Runs API.
type runsEnv struct {
	*env
	tg   *telegramtest.Server
	ag   *agenttest.Runs
	chat telegramtest.Chat
}

func newRunsEnv(t *testing.T, o agenttest.RunsOptions, extra string) *runsEnv {
	e := newEnv(t, envOpts{})
	o.Listen = e.s.Listen
	o.Key = "hermes-key"
	r := &runsEnv{env: e, tg: telegramtest.NewOn(t, e.s.Listen, ""), ag: agenttest.NewRuns(t, o), chat: telegramtest.Chat{ID: 555, Type: "private"}}
	e.credential("telegram-token", r.tg.Token)
	e.credential("hermes-key", "hermes-key")
	e.writeConfig(fmt.Sprintf(`log:
  level: debug
shutdown:
  drain_timeout: 2s
  adapter_timeout: 2s
agent:
  kind: hermes
  url: %s
  key: {credential: hermes-key}
%splatforms:
  telegram:
    allow_all: true
    token: {credential: telegram-token}
    api_url: %s
    poll_timeout: 5s
`, r.ag.URL, extra, r.tg.URL))
	return r
}

// send posts text from the chat's user.
func (r *runsEnv) send(chat telegramtest.Chat, text string) {
	r.tg.PushText(chat, telegramtest.User{ID: chat.ID, FirstName: "Ann"}, text)
}

// runAt waits until the chat's run has produced n words and returns its id.
func (r *runsEnv) runAt(n int) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	var id string
	if err := r.ag.Wait(ctx, fmt.Sprintf("a run at word %d", n), func() bool {
		reqs := r.ag.RunRequests()
		if len(reqs) == 0 {
			return false
		}
		id = reqs[0].RunID
		return r.ag.Deltas(id) >= n
	}); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// settledReplies waits for the chat's first reply, lets herald settle and
// returns the run's full text and what the user sees.
func (r *runsEnv) settledReplies() (want string, got []string) {
	r.t.Helper()
	chatID := fmt.Sprint(r.chat.ID)
	r.tg.Wait(r.t, runsWait, "the reply", func() bool { return len(r.tg.Transcript(chatID)) >= 1 })
	r.settled()
	return "run: " + runsInput, r.tg.Transcript(chatID)
}

// oneReply waits for the chat's reply, lets herald settle and checks that
// the user got exactly one reply, the run's full text, and that the fake
// executed the turn exactly once. It logs the measured numbers.
func (r *runsEnv) oneReply(scenario string) {
	r.t.Helper()
	want, got := r.settledReplies()
	execs := r.ag.TotalExecutions()
	r.t.Logf("%s: %d executions, %d replies, %d POST /v1/runs", scenario, execs, len(got), len(r.ag.RunRequests()))
	if len(got) != 1 || got[0] != want {
		r.t.Fatalf("the user sees %q, want exactly [%q]", got, want)
	}
	if execs != 1 {
		r.t.Fatalf("the backend executed the turn %d times, want 1 (%v)", execs, r.ag.ExecutionsByKey())
	}
	if len(r.ag.Stops()) != 0 {
		r.t.Fatalf("herald stopped the run: %v", r.ag.Stops())
	}
}

// A ten-second run, `systemctl restart herald` at its third second: the
// draining instance detaches (drain_timeout 2s), the next one re-attaches by
// the run id it finds in the store.
func TestRunSurvivesRestart(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: time.Second}, "")
	r.startReady()
	r.send(r.chat, runsInput)
	r.runAt(3)
	before := r.mainPID()
	r.systemctl("restart", "herald.service")
	if r.mainPID() == before {
		t.Fatal("herald was not restarted")
	}
	r.waitJournal("herald.service", map[string]string{"MESSAGE": "agent: re-attaching to the run"}, runsWait)
	r.oneReply("restart at 3s")
	if n := len(r.ag.RunRequests()); n != 1 {
		t.Fatalf("%d POST /v1/runs, want 1: the next instance re-attaches by the stored run id", n)
	}
}

// The same with SIGKILL at the third second: nothing drains, systemd
// restarts herald (Restart=on-failure).
func TestRunSurvivesSIGKILL(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: time.Second}, "")
	r.startReady()
	r.send(r.chat, runsInput)
	r.killDuringSend(func() { r.runAt(3) })
	r.oneReply("SIGKILL at 3s")
}

// herald stopped past the expiry of the run's event buffer: the next
// instance finds no events (404) and polls the run's status until it ends.
// Hermes expires an unconsumed buffer after five minutes; the fake's expiry
// is shortened to two seconds instead of stopping herald for six minutes.
func TestRunSurvivesBufferExpiry(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: time.Second, BufferTTL: 2 * time.Second, Resumable: true}, "")
	r.startReady()
	r.send(r.chat, runsInput)
	id := r.runAt(3)
	r.systemctl("stop", "herald.service")
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	if err := r.ag.Wait(ctx, "the buffer expired", func() bool { return r.ag.BufferExpired(id) }); err != nil {
		t.Fatal(err)
	}
	if st := r.ag.Status(id); st != agenttest.StatusRunning {
		t.Fatalf("run %s is %s when herald starts again, want running (the test must re-attach to a running run)", id, st)
	}
	r.startReady()
	r.oneReply("stopped past buffer expiry")
}

// Fifty conversations in flight across five restarts.
func TestRunsManyAcrossRestarts(t *testing.T) {
	// Runs of about 28 s (14 words, 2 s each): five restarts (about 2 s
	// each: drain_timeout) all happen while they execute.
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: 2 * time.Second}, "")
	r.startReady()
	const n = 50
	for i := 0; i < n; i++ {
		r.send(telegramtest.Chat{ID: int64(1000 + i), Type: "private"}, fmt.Sprintf("conversation %d %s", i, runsInput))
	}
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	if err := r.ag.Wait(ctx, "every run created", func() bool { return len(r.ag.RunRequests()) >= n }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if done := r.ag.Completed(); done == n {
			t.Fatalf("every run completed before restart %d: the runs are too short for this machine", i+1)
		}
		took, _, _ := r.timed("restart", "herald.service")
		t.Logf("restart %d took %v, %d of %d runs completed", i+1, took.Round(time.Millisecond), r.ag.Completed(), n)
	}
	r.tg.Wait(t, 3*runsWait, "every reply", func() bool {
		for i := 0; i < n; i++ {
			if len(r.tg.Transcript(fmt.Sprint(1000+i))) == 0 {
				return false
			}
		}
		return true
	})
	r.settled()
	replies := 0
	for i := 0; i < n; i++ {
		got := r.tg.Transcript(fmt.Sprint(1000 + i))
		replies += len(got)
		want := fmt.Sprintf("run: conversation %d %s", i, runsInput)
		if len(got) != 1 || got[0] != want {
			t.Errorf("conversation %d: the user sees %q, want [%q]", i, got, want)
		}
	}
	execs := r.ag.TotalExecutions()
	reattached := len(r.journal("herald.service", map[string]string{"MESSAGE": "agent: re-attaching to the run"}))
	t.Logf("50 conversations, 5 restarts: %d executions, %d replies, %d re-attachments", execs, replies, reattached)
	if reattached < n {
		t.Errorf("%d re-attachments, want at least %d", reattached, n)
	}
	if execs != n {
		t.Fatalf("%d executions, want %d: %v", execs, n, r.ag.ExecutionsByKey())
	}
	for k, v := range r.ag.ExecutionsByKey() {
		if v != 1 {
			t.Errorf("key %s executed %d times", k, v)
		}
	}
}

// Capabilities without runs: herald falls back to chat completions, says
// so in the log and in herald status, and answers.
func TestRunsFallbackShown(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{Features: map[string]bool{"chat_completions": true, "run_submission": true}}, "")
	r.startReady()
	r.send(r.chat, "hello")
	r.tg.Wait(t, runsWait, "the reply", func() bool { return len(r.tg.Transcript("555")) == 1 })
	if got := r.tg.Transcript("555")[0]; got != "agent: hello" {
		t.Fatalf("reply %q", got)
	}
	r.waitJournal("herald.service", map[string]string{
		"MESSAGE":  "agent: kind hermes falls back to chat completions (the backend's capabilities lack run_status, run_events_sse, run_stop): a restart during a turn runs the turn again",
		"PRIORITY": "4",
	}, runsWait)
	out, _, _ := r.run("herald", "status")
	if !strings.Contains(out, "agent: hermes via chat completions (the backend's capabilities lack run_status, run_events_sse, run_stop)") {
		t.Fatalf("herald status:\n%s", out)
	}
}

// /stop during a run: herald calls the run's stop endpoint, the run ends
// cancelled, and the user gets one "Stopped." and no reply.
func TestRunStop(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: time.Second}, "")
	r.startReady()
	r.send(r.chat, runsInput)
	id := r.runAt(2)
	r.send(r.chat, "/stop")
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	if err := r.ag.Wait(ctx, "the run cancelled", func() bool { return r.ag.Status(id) == agenttest.StatusCancelled }); err != nil {
		t.Fatal(err)
	}
	r.tg.Wait(t, runsWait, "the stop reply", func() bool { return len(r.tg.Transcript("555")) >= 1 })
	r.settled()
	got := r.tg.Transcript("555")
	t.Logf("/stop: %d stop calls, %d executions, user sees %q", len(r.ag.Stops()), r.ag.TotalExecutions(), got)
	if stops := r.ag.Stops(); len(stops) != 1 || stops[0] != id {
		t.Fatalf("stop calls %v, want [%s]", stops, id)
	}
	if len(got) != 1 || got[0] != "Stopped." {
		t.Fatalf("the user sees %q, want [\"Stopped.\"]", got)
	}
}

// Approval across a restart: the run asks, `systemctl restart herald`,
// the user answers /approve to the next instance, and the run completes.
func TestRunApprovalAcrossRestart(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{}, "  approval_timeout: 10m\n")
	r.startReady()
	r.send(r.chat, agenttest.InputApprove+" rm -rf /tmp/x")
	prompt := "The agent asks to run terminal:\nrm -rf /tmp/x\n(dangerous command)\nReply /approve to allow it once or /deny to refuse. Without an answer within 10m0s it is denied."
	r.tg.Wait(t, runsWait, "the prompt", func() bool { return len(r.tg.Transcript("555")) == 1 })
	r.systemctl("restart", "herald.service")
	r.waitJournal("herald.service", map[string]string{"MESSAGE": "agent: re-attaching to the run"}, runsWait)
	r.send(r.chat, "/approve")
	r.tg.Wait(t, runsWait, "the reply", func() bool { return len(r.tg.Transcript("555")) >= 3 })
	r.settled()
	got := r.tg.Transcript("555")
	// The answer to /approve and the run's reply race: the run goes on as
	// soon as Hermes has the answer.
	if len(got) == 3 {
		sort.Strings(got[1:])
	}
	want := []string{prompt, "Approved.", "run: approved rm -rf /tmp/x"}
	t.Logf("approval across restart: %d executions, user sees %q", r.ag.TotalExecutions(), got)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the user sees %q, want %q", got, want)
	}
	if n := r.ag.TotalExecutions(); n != 1 {
		t.Fatalf("%d executions", n)
	}
}

// /deny, and no answer within agent.approval_timeout: the run is denied
// either way and the user is told.
func TestRunApprovalDenyAndTimeout(t *testing.T) {
	for _, tt := range []struct {
		name, answer, timeout, told string
	}{
		{"deny", "/deny", "10m", "Denied."},
		{"timeout", "", "3s", "No answer within 3s: the request was denied."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunsEnv(t, agenttest.RunsOptions{}, "  approval_timeout: "+tt.timeout+"\n")
			r.startReady()
			r.send(r.chat, agenttest.InputApprove+" rm -rf /tmp/x")
			r.tg.Wait(t, runsWait, "the prompt", func() bool { return len(r.tg.Transcript("555")) == 1 })
			if tt.answer != "" {
				r.send(r.chat, tt.answer)
			}
			r.tg.Wait(t, runsWait, "the reply", func() bool { return len(r.tg.Transcript("555")) >= 3 })
			r.settled()
			got := r.tg.Transcript("555")[1:]
			sort.Strings(got)
			want := []string{tt.told, "run: denied rm -rf /tmp/x"}
			sort.Strings(want)
			t.Logf("approval %s: %d executions, user sees %q after the prompt", tt.name, r.ag.TotalExecutions(), got)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("after the prompt the user sees %q, want %q", got, want)
			}
			if a := r.ag.Approvals(); len(a) != 1 || a[0].Choice != "deny" {
				t.Fatalf("approvals %+v", a)
			}
		})
	}
}

// agent.rerun_interrupted: Hermes restarts at the third second of a
// ten-second run, so the run reads as interrupted; herald runs the turn once
// more under a new key, and `systemctl restart herald` at the third second
// of that re-run re-attaches to it (no third run). The user gets one reply.
func TestRunRerunAfterBackendRestart(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{WordDelay: time.Second}, "  rerun_interrupted: true\n")
	r.startReady()
	r.send(r.chat, runsInput)
	r.runAt(3)
	r.ag.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), runsWait)
	defer cancel()
	if err := r.ag.Wait(ctx, "the re-run at word 3", func() bool {
		reqs := r.ag.RunRequests()
		return len(reqs) == 2 && reqs[1].RunID != "" && r.ag.Deltas(reqs[1].RunID) >= 3
	}); err != nil {
		t.Fatal(err)
	}
	before := r.mainPID()
	r.systemctl("restart", "herald.service")
	if r.mainPID() == before {
		t.Fatal("herald was not restarted")
	}
	want, got := r.settledReplies()
	byKey := r.ag.ExecutionsByKey()
	t.Logf("backend restart at 3s, herald restart at 3s of the re-run: %d executions %v, %d replies, %d POST /v1/runs", r.ag.TotalExecutions(), byKey, len(got), len(r.ag.RunRequests()))
	if len(got) != 1 || got[0] != want {
		t.Fatalf("the user sees %q, want exactly [%q]", got, want)
	}
	if r.ag.TotalExecutions() != 2 || len(byKey) != 2 {
		t.Fatalf("executions %v, want one under the message's key and one under the re-run's", byKey)
	}
	if n := len(r.ag.RunRequests()); n != 2 {
		t.Fatalf("%d POST /v1/runs, want 2: the restarted herald re-attaches to the re-run", n)
	}
}

// Approval by button across a restart: the run asks with Approve and Deny
// buttons, `systemctl restart herald`, the user presses Approve twice on
// the next instance (the button's data is checked against the store, not
// memory). Hermes gets exactly one answer, the run completes, both presses
// are answered to Telegram, and the second press answers nothing.
func TestRunApprovalButtonAcrossRestart(t *testing.T) {
	r := newRunsEnv(t, agenttest.RunsOptions{}, "  approval_timeout: 10m\n")
	r.startReady()
	r.send(r.chat, agenttest.InputApprove+" rm -rf /tmp/x")
	r.tg.Wait(t, runsWait, "the prompt", func() bool { return len(r.tg.Sent()) == 1 })
	prompt := r.tg.Sent()[0]
	if len(prompt.Buttons) != 2 || prompt.Buttons[0].Text != "Approve" || prompt.Buttons[1].Text != "Deny" {
		t.Fatalf("prompt %+v, want Approve and Deny buttons", prompt)
	}
	r.systemctl("restart", "herald.service")
	r.waitJournal("herald.service", map[string]string{"MESSAGE": "agent: re-attaching to the run"}, runsWait)
	ann := telegramtest.User{ID: r.chat.ID, FirstName: "Ann"}
	_, first := r.tg.PushCallback(r.chat, ann, prompt.MessageID, prompt.Buttons[0].CallbackData)
	_, second := r.tg.PushCallback(r.chat, ann, prompt.MessageID, prompt.Buttons[0].CallbackData)
	r.tg.Wait(t, runsWait, "the reply", func() bool { return len(r.tg.Transcript("555")) >= 4 })
	r.settled()
	got := r.tg.Transcript("555")
	t.Logf("approval by button across restart: %d executions, %d approval answers, user sees %q", r.ag.TotalExecutions(), len(r.ag.Approvals()), got)
	if a := r.ag.Approvals(); len(a) != 1 || a[0].Choice != "once" || a[0].Status != 200 {
		t.Fatalf("Hermes got the approvals %+v, want one \"once\"", a)
	}
	if n := r.ag.TotalExecutions(); n != 1 {
		t.Fatalf("%d executions", n)
	}
	count := map[string]int{}
	for _, s := range got[1:] {
		if strings.HasPrefix(s, "Nothing to approve") {
			s = "Nothing to approve"
		}
		count[s]++
	}
	if len(got) != 4 || got[0] != prompt.Text || count["Approved."] != 1 || count["run: approved rm -rf /tmp/x"] != 1 || count["Nothing to approve"] != 1 {
		t.Fatalf("the user sees %q, want the prompt, one \"Approved.\", the run's reply and one \"Nothing to approve\"", got)
	}
	answered := map[string]bool{}
	for _, req := range r.tg.Requests("answerCallbackQuery") {
		answered[req.Params.Get("callback_query_id")] = true
	}
	if !answered[first] || !answered[second] {
		t.Fatalf("callback queries answered %v, want %s and %s", answered, first, second)
	}
}
