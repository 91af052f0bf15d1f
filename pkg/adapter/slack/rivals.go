// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"time"

	"github.com/sirupsen/logrus"
)

// RivalAlarm is Status.Alarm while Slack has counted more Socket Mode
// connections of the app than herald holds for conflict_window or longer.
const RivalAlarm = "another client (e.g. the Hermes gateway) holds a Socket Mode connection of this app: Slack delivers each event over one of the app's connections, so herald misses the events sent to the other client"

// rivals judges the num_connections of each hello against the connections
// herald holds. herald itself holds two while it switches to the next
// connection, and both count. A connection Slack has not seen closed yet
// counts too: the previous instance's right after a restart, or one herald
// dropped after a network failure. So an excess is only a warning, looked
// at again conflict_window later on a fresh connection; an excess that is
// still there conflict_window or more after it was first seen raises the
// alarm. While the alarm is up herald keeps looking every
// conflict_window; a hello whose count does not exceed herald's clears it.
type rivals struct {
	window time.Duration
	since  time.Time // when the current excess was first seen; zero if none
	alarm  string
}

// observe judges the hello of c. It returns whether to look again
// conflict_window from now.
func (r *rivals) observe(c *conn, now time.Time) (again bool) {
	log := c.log.WithFields(logrus.Fields{"num_connections": c.counted, "herald_connections": c.held})
	switch {
	case c.counted <= c.held:
		if r.alarm != "" {
			log.Info("slack: Slack counts no Socket Mode connection besides herald's any more; alarm cleared")
		}
		r.since, r.alarm = time.Time{}, ""
		return false
	case r.since.IsZero():
		r.since = now
		log.Warn("slack: Slack counts more Socket Mode connections of this app than herald holds: most likely one still closing (the previous instance's, or one dropped after a network failure); looking again after conflict_window")
	case now.Sub(r.since) >= r.window:
		r.alarm = RivalAlarm
		log.Error("slack: another client holds a Socket Mode connection of this app (e.g. the Hermes gateway with Slack enabled) and gets part of the events: stop it. Looking again every conflict_window")
	}
	return true
}
