// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/message"
)

// newButtonsEnv is a runs environment whose platform shows buttons and
// whose dispatcher signs them.
func newButtonsEnv(t *testing.T) *runsEnv {
	t.Helper()
	e := newRunsEnv(t, agenttest.RunsOptions{})
	e.close()
	e.ad.buttons = true
	e.opts.ButtonKey = []byte("0123456789abcdef0123456789abcdef")
	e.open()
	return e
}

// press is the Inbound of sender pressing the button with data in chat.
func press(event, chat, sender, data string) *message.Inbound {
	m := in(event, chat, sender, "")
	m.Button = data
	return m
}

// askApproval starts a run that asks for approval and returns the prompt.
func askApproval(t *testing.T, e *runsEnv) message.Outbound {
	t.Helper()
	if err := e.d.Deliver(context.Background(), in("1", "c", "u", agenttest.InputApprove+" rm -rf /tmp/x")); err != nil {
		t.Fatal(err)
	}
	p := e.ad.waitSent(t, 1)[0]
	if p.Text != approvalAsk {
		t.Fatalf("prompt %q", p.Text)
	}
	return p
}

// The prompt carries Approve and Deny buttons; Approve pressed after a
// restart (the buttons come from the outbox, the check from the store)
// approves once, and pressing it again answers nothing.
func TestApprovalButtonSurvivesRestart(t *testing.T) {
	e := newButtonsEnv(t)
	p := askApproval(t, e)
	if len(p.Buttons) != 2 || p.Buttons[0].Label != "Approve" || p.Buttons[1].Label != "Deny" {
		t.Fatalf("buttons %+v", p.Buttons)
	}
	for _, b := range p.Buttons {
		if !strings.HasPrefix(b.Data, "hr1:") || len(b.Data) > message.MaxButtonData {
			t.Fatalf("button data %q", b.Data)
		}
		if strings.Contains(b.Data, e.f.Pending()[0]) {
			t.Fatalf("button data %q holds the run id", b.Data)
		}
	}
	e.stop()
	e.open()
	if err := e.d.Deliver(context.Background(), press("cb-1", "c", "u", p.Buttons[0].Data)); err != nil {
		t.Fatal(err)
	}
	// The platform redelivers the same press: stored once.
	if err := e.d.Deliver(context.Background(), press("cb-1", "c", "u", p.Buttons[0].Data)); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 3)
	waitPending(t, e.st, 0)
	if err := e.d.Deliver(context.Background(), press("cb-2", "c", "u", p.Buttons[0].Data)); err != nil {
		t.Fatal(err)
	}
	got := e.ad.waitSent(t, 4)
	waitPending(t, e.st, 0)
	want := texts([]message.Outbound{{Text: approvalAsk}, {Text: "Approved."}, {Text: "run: approved rm -rf /tmp/x"}})
	if g := texts(got[:3]); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Fatalf("the user sees %q, want %q", g, want)
	}
	if got[3].Text != "Nothing to approve." {
		t.Fatalf("second press answered %q", got[3].Text)
	}
	if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "once" || a[0].Status != 200 {
		t.Fatalf("approvals %+v", a)
	}
}

func TestApprovalButtonDeny(t *testing.T) {
	e := newButtonsEnv(t)
	p := askApproval(t, e)
	if err := e.d.Deliver(context.Background(), press("cb-1", "c", "u", p.Buttons[1].Data)); err != nil {
		t.Fatal(err)
	}
	e.ad.waitSent(t, 3)
	waitPending(t, e.st, 0)
	if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "deny" {
		t.Fatalf("approvals %+v", a)
	}
}

// Two presses at once reach the backend once.
func TestApprovalButtonPressedTwiceAtOnce(t *testing.T) {
	e := newButtonsEnv(t)
	p := askApproval(t, e)
	var wg sync.WaitGroup
	for _, ev := range []string{"cb-1", "cb-2", "cb-3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.d.Deliver(context.Background(), press(ev, "c", "u", p.Buttons[0].Data)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.ad.waitSent(t, 5)
	waitPending(t, e.st, 0)
	if a := e.f.Approvals(); len(a) != 1 {
		t.Fatalf("approvals %+v", a)
	}
	approved := 0
	for _, m := range e.ad.Sent() {
		if m.Text == "Approved." {
			approved++
		}
	}
	if approved != 1 {
		t.Fatalf("%d \"Approved.\" in %q", approved, texts(e.ad.Sent()))
	}
}

// A forged button, or a genuine one from another conversation, never
// answers; data that is not a button's is refused at intake.
func TestApprovalButtonForged(t *testing.T) {
	e := newButtonsEnv(t)
	p := askApproval(t, e)
	good := p.Buttons[0].Data
	forged := good[:len(good)-2] + "AA"
	if forged == good {
		forged = good[:len(good)-2] + "BB"
	}
	if err := e.d.Deliver(context.Background(), press("cb-1", "c", "u", forged)); err != nil {
		t.Fatal(err)
	}
	if got := e.ad.waitSent(t, 2); !strings.HasPrefix(got[1].Text, "This button does not answer") {
		t.Fatalf("forged press answered %q", got[1].Text)
	}
	// The same session's data pressed in another chat: another session,
	// which has nothing pending.
	if err := e.d.Deliver(context.Background(), press("cb-2", "other", "u", good)); err != nil {
		t.Fatal(err)
	}
	if got := e.ad.waitSent(t, 3); got[2].Text != "Nothing to approve." {
		t.Fatalf("press in another chat answered %q", got[2].Text)
	}
	for _, bad := range []string{"approve", "hr1:x:" + good[6:], "hr1:a:short"} {
		if err := e.d.Deliver(context.Background(), press("cb-bad", "c", "u", bad)); !errors.Is(err, message.ErrInvalid) {
			t.Fatalf("data %q: %v", bad, err)
		}
	}
	if len(e.f.Approvals()) != 0 || len(e.f.Pending()) != 1 {
		t.Fatalf("approvals %+v, pending %v", e.f.Approvals(), e.f.Pending())
	}
}

// Without button support the prompt is text only.
func TestApprovalPromptWithoutButtons(t *testing.T) {
	e := newRunsEnv(t, agenttest.RunsOptions{})
	e.close()
	e.opts.ButtonKey = []byte("0123456789abcdef0123456789abcdef")
	e.open()
	if p := askApproval(t, e); len(p.Buttons) != 0 {
		t.Fatalf("buttons %+v on a platform without them", p.Buttons)
	}
}

// A button made by one node is accepted by a node whose own key differs
// once SetButtonKey gave it the key the cluster shares.
func TestSetButtonKey(t *testing.T) {
	e := newButtonsEnv(t)
	p := askApproval(t, e)
	shared := e.opts.ButtonKey
	e.stop()
	e.opts.ButtonKey = []byte("another node's own key, 32 bytes")
	e.open()
	e.d.SetButtonKey(nil) // ignored
	e.d.SetButtonKey(shared)
	if err := e.d.Deliver(context.Background(), press("cb-1", "c", "u", p.Buttons[0].Data)); err != nil {
		t.Fatal(err)
	}
	got := e.ad.waitSent(t, 3)
	waitPending(t, e.st, 0)
	want := texts([]message.Outbound{{Text: approvalAsk}, {Text: "Approved."}, {Text: "run: approved rm -rf /tmp/x"}})
	if g := texts(got[:3]); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Fatalf("the user sees %q, want %q", g, want)
	}
	if a := e.f.Approvals(); len(a) != 1 || a[0].Choice != "once" {
		t.Fatalf("approvals %+v", a)
	}
}
