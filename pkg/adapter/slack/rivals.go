// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"time"

	"github.com/sirupsen/logrus"
)

// RivalAlarm is Status.Alarm while Slack counts more Socket Mode
// connections of the app than herald holds, after conflict_window.
const RivalAlarm = "another client (e.g. the Hermes gateway) holds a Socket Mode connection of this app: Slack delivers each event over one of the app's connections, so herald misses the events sent to the other client"

// rivals judges the num_connections of each hello. herald itself holds two
// connections while it switches to the next one, and a previous instance's
// connection may still be closing right after a restart: so only a count
// above herald's own, seen conflict_window or more after start, raises the
// alarm. An excess seen earlier, or while the alarm is up, is looked at
// again conflict_window later on a fresh connection; a hello whose count
// does not exceed herald's clears the alarm.
type rivals struct {
	window  time.Duration
	started time.Time
	alarm   string
}

// observe judges the hello of c. It returns whether to look again
// conflict_window from now.
func (r *rivals) observe(c *conn, now time.Time) (again bool) {
	extra := c.counted - c.held
	log := c.log.WithFields(logrus.Fields{"num_connections": c.counted, "herald_connections": c.held})
	switch {
	case extra <= 0:
		if r.alarm != "" {
			log.Info("slack: Slack counts no Socket Mode connection besides herald's any more; alarm cleared")
			r.alarm = ""
		}
		return false
	case now.Sub(r.started) < r.window:
		log.Warn("slack: Slack counts more Socket Mode connections of this app than herald holds, within conflict_window after start: most likely the previous instance's connection, still closing; looking again after conflict_window")
	default:
		r.alarm = RivalAlarm
		log.Error("slack: another client holds a Socket Mode connection of this app (e.g. the Hermes gateway with Slack enabled) and gets part of the events: stop it. Looking again every conflict_window")
	}
	return true
}
