// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Over the daily budget: one clear message saying when, nothing reaches
// the agent, and the count survives a restart.
func TestBudgetPerDay(t *testing.T) {
	opts := Options{Limits: UserLimits{TurnsPerDay: 2, Exempt: []string{"p:boss"}}}
	e := newEnv(t, opts, allowAll)
	for i := 1; i <= 4; i++ {
		e.deliver(in(fmt.Sprint("u", i), "c", "u", fmt.Sprint("m", i)))
		if i <= 3 {
			e.ad.waitSent(t, i)
		}
	}
	sent := e.ad.waitSent(t, 3)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	if !strings.Contains(sent[2].Text, "2 messages today") || !strings.Contains(sent[2].Text, tomorrow+" 00:00 UTC") {
		t.Fatalf("over-budget notice %q", sent[2].Text)
	}
	e.close()
	e.open(opts, allowAll)
	e.deliver(in("u5", "c", "u", "m5"))
	// An exempt user is answered meanwhile: the waits below are on that.
	for i := 1; i <= 3; i++ {
		e.deliver(in(fmt.Sprint("b", i), "cb", "boss", fmt.Sprint("b", i)))
	}
	sent = e.ad.waitSent(t, 6)
	if len(sent) != 6 {
		t.Fatalf("sent %d: %+v", len(sent), sent)
	}
	for _, c := range e.agent.Calls() {
		if last := c.Messages[len(c.Messages)-1].Content; last == "m3" || last == "m4" || last == "m5" {
			t.Fatalf("a message over the budget reached the agent: %q", last)
		}
	}
	if n := len(e.agent.Calls()); n != 5 {
		t.Fatalf("agent calls %d, want 2 for u and 3 for boss", n)
	}
	top, err := e.st.TopUsers(t.Context(), 5)
	// Exempt users are not counted.
	if err != nil || len(top) != 1 || top[0].UserID != "u" || top[0].Today != 2 {
		t.Fatalf("top users %+v %v", top, err)
	}
}

// A user with max_queued messages waiting gets told, and the next message
// does not reach the agent.
func TestBudgetMaxQueued(t *testing.T) {
	e := newEnv(t, Options{Limits: UserLimits{MaxQueued: 1}}, allowAll)
	e.agent.gate = make(chan struct{})
	e.deliver(in("1", "c", "u", "first"))
	<-e.agent.started
	e.deliver(in("2", "c", "u", "second"))
	if sent := e.ad.waitSent(t, 1); !strings.Contains(sent[0].Text, "1 messages waiting") {
		t.Fatalf("notice %+v", sent)
	}
	close(e.agent.gate)
	if sent := e.ad.waitSent(t, 2); sent[1].Text != "re: first" {
		t.Fatalf("sent %+v", sent)
	}
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("agent calls %d, want 1", n)
	}
}
