// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/store"
)

var pairingPolicy = Policy{DMPolicy: "pairing", Unauthorized: "reply", UnauthorizedText: "no"}

var codeRE = regexp.MustCompile(`code ([A-Z0-9]{8}) `)

// codeOf returns the pairing code in reply text.
func codeOf(t *testing.T, text string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no pairing code in %q", text)
	}
	if strings.ContainsAny(m[1], "01OIL") {
		t.Fatalf("code %s has an ambiguous character", m[1])
	}
	return m[1]
}

func TestPairingRoundTrip(t *testing.T) {
	e := newEnv(t, Options{}, pairingPolicy)
	ctx := context.Background()
	e.deliver(in("1", "dm-ann", "ann", "let me in"))
	sent := e.ad.waitSent(t, 1)
	code := codeOf(t, sent[0].Text)
	if sent[0].ChatID != "dm-ann" || len(e.agent.Calls()) != 0 {
		t.Fatalf("reply %+v, agent calls %d: the message must not reach the agent", sent[0], len(e.agent.Calls()))
	}
	// Asking again within the refusal interval gets no second reply.
	e.deliver(in("2", "dm-ann", "ann", "hello?"))
	// A group message from the unknown user is ignored, without a code.
	g := in("3", "grp", "ann", "hi all")
	g.ChatType = "group"
	e.deliver(g)
	pending, _, err := e.st.Pairings(ctx)
	if err != nil || len(pending) != 1 || pending[0].Code != code || pending[0].UserID != "ann" {
		t.Fatalf("pending %+v %v", pending, err)
	}

	// Approval survives a restart of the dispatcher; the user is told.
	if _, err := e.d.ApprovePairing(ctx, "p", "nope1234", true); !errors.Is(err, store.ErrNoPairingCode) {
		t.Fatalf("approving a wrong code: %v", err)
	}
	req, err := e.d.ApprovePairing(ctx, "p", strings.ToLower(code), true)
	if err != nil || req.UserID != "ann" {
		t.Fatalf("approve: %+v %v", req, err)
	}
	if sent := e.ad.waitSent(t, 2); sent[1].Text != PairingApprovedText || sent[1].ChatID != "dm-ann" {
		t.Fatalf("notification %+v", sent[1])
	}
	e.close()
	e.open(Options{}, pairingPolicy)
	e.deliver(in("4", "dm-ann", "ann", "now?"))
	if sent := e.ad.waitSent(t, 3); sent[2].Text != "re: now?" {
		t.Fatalf("after the approval and a restart: %+v", sent[2])
	}
	if calls := e.agent.Calls(); len(calls) != 1 || calls[0].Messages[len(calls[0].Messages)-1].Content != "now?" {
		t.Fatalf("agent calls %+v: only the message after the approval", calls)
	}

	// Revoked: refused again (a new code), nothing reaches the agent.
	if found, err := e.d.RevokePairing(ctx, "p", "ann"); !found || err != nil {
		t.Fatalf("revoke: %v %v", found, err)
	}
	e.deliver(in("5", "dm-ann", "ann", "still there?"))
	if sent := e.ad.waitSent(t, 4); codeOf(t, sent[3].Text) == code {
		t.Fatal("a revoked user got the approved code again")
	}
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("agent called %d times after the revocation", n)
	}
}

// At most MaxPendingPairings codes are pending per platform; the next user
// is told to try later.
func TestPairingPendingLimit(t *testing.T) {
	e := newEnv(t, Options{}, pairingPolicy)
	for i := 0; i <= MaxPendingPairings; i++ {
		u := fmt.Sprint("u", i)
		e.deliver(in(u, "dm-"+u, u, "hi"))
	}
	sent := e.ad.waitSent(t, MaxPendingPairings+1)
	full := 0
	for _, s := range sent {
		if strings.Contains(s.Text, "Too many access requests") {
			full++
		} else {
			codeOf(t, s.Text)
		}
	}
	if full != 1 {
		t.Fatalf("%d users told to try later, want 1: %+v", full, sent)
	}
	if len(e.agent.Calls()) != 0 {
		t.Fatal("a pairing request reached the agent")
	}
}

func TestPairingCodes(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		c := NewPairingCode()
		if len(c) != PairingCodeLen || strings.Trim(c, pairingAlphabet) != "" {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 990 {
		t.Fatalf("%d distinct codes of 1000", len(seen))
	}
}
