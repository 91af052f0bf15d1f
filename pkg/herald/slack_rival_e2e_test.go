// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/slack"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/herald"
)

// TestE2ESlackAnotherClient: Slack counts a Socket Mode connection of the
// app that herald does not hold (a Hermes gateway still running Slack).
// Once that lasts conflict_window, /status carries the alarm, `herald
// status` prints it and `herald doctor` fails naming the Hermes key.
func TestE2ESlackAnotherClient(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(slacktest.Options{})
	t.Cleanup(fake.Close)
	fake.SetOthers(1)
	e := newE2E(t, "slack")
	e.configure("  kind: echo\n", fmt.Sprintf(`  slack:
    allow_all: true
    app_token: {file: %s}
    bot_token: {file: %s}
    api_url: %s
    conflict_window: 500ms
`, e.secret("slack-app", fake.AppToken()), e.secret("slack-bot", fake.BotToken()), fake.APIURL()))
	p := e.start(startOpts{})
	waitStatus(t, e.dir, func(s adminapi.StatusReport) bool {
		for _, pr := range s.Platforms {
			if pr.Name == "slack" && pr.Phase == "connected" && pr.Alarm == slack.RivalAlarm {
				return true
			}
		}
		return false
	})
	out, err := runHerald(t, "status", "--config", e.cfg, "--admin-socket", filepath.Join(e.dir, "admin.sock"))
	if !hasLine(out, "slack", "connected", "ALARM: another client (e.g. the Hermes gateway) holds a Socket Mode connection of this app") {
		t.Errorf("herald status (%v) does not show the alarm:\n%s", err, out)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform slack", "another client") || !strings.Contains(out, "platforms.slack.enabled: false") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL for platform slack naming Hermes' platforms.slack.enabled:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
}
