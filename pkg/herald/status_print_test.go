// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestStatusNeverPrintsNegativeRetry: a platform still reconnecting after
// its retry time (the attempt is under way) shows "retrying now", not
// "retry in -20s".
func TestStatusNeverPrintsNegativeRetry(t *testing.T) {
	for _, tt := range []struct {
		retryAt time.Time
		want    string
	}{
		{time.Now().Add(-20 * time.Second), "retrying now"},
		{time.Now().Add(90 * time.Second), "retry in 1m"},
	} {
		var b bytes.Buffer
		printStatus(&b, InspectOptions{Unit: "herald.service"}, statusDoc{
			UnitError: "not reachable in this test",
			Herald: &StatusReport{Platforms: []PlatformReport{
				{Name: "tg", Type: "telegram", Phase: "reconnecting", Since: time.Now(), RetryAt: tt.retryAt, Error: "connection refused"},
			}},
		})
		out := b.String()
		if !strings.Contains(out, tt.want) || strings.Contains(out, "retry in -") {
			t.Errorf("retry at %v printed as:\n%s\nwant %q", time.Until(tt.retryAt).Round(time.Second), out, tt.want)
		}
	}
}

// The agent's mode shows in herald status, with why it fell back.
func TestStatusPrintsAgentMode(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, InspectOptions{Unit: "herald.service"}, statusDoc{
		UnitError: "not reachable in this test",
		Herald:    &StatusReport{AgentMode: "chat_completions", AgentNote: "the backend's capabilities lack run_stop"},
	})
	if out := b.String(); !strings.Contains(out, "agent: hermes via chat completions (the backend's capabilities lack run_stop)") {
		t.Fatalf("status:\n%s", out)
	}
}
