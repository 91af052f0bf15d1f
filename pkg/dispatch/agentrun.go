// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"errors"

	"github.com/heraldgw/herald/pkg/agent"
)

// rejectedText is what the user is told when the agent rejected a turn: a
// backend run that ended without a reply says how it ended.
func rejectedText(err error) string {
	var re *agent.RunError
	if errors.As(err, &re) {
		switch re.Status {
		case "interrupted":
			return "Sorry, the agent was restarted while it worked on this message and did not finish. Please send it again."
		case "cancelled":
			return "The agent's work on this message was stopped."
		}
	}
	return "Sorry, the agent could not answer this message."
}

// AgentMode reports how the current agent runs turns (agent.ModeRuns or
// agent.ModeChatCompletions for kind hermes once it asked the backend, ""
// otherwise) and why, for herald status.
func (d *Dispatcher) AgentMode() (mode, note string) {
	d.mu.Lock()
	ag := d.agent
	d.mu.Unlock()
	if m, ok := ag.(interface{ Mode() (string, string) }); ok {
		return m.Mode()
	}
	return "", ""
}
