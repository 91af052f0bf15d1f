// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/heraldgw/herald/pkg/store"
)

// UsersReport shows the users who talked most to the agent today against
// limits.per_user, in StatusReport.
type UsersReport struct {
	TurnsPerMinute int               `json:"turns_per_minute"`
	TurnsPerDay    int               `json:"turns_per_day"`
	MaxQueued      int               `json:"max_queued"`
	Top            []store.UserUsage `json:"top"`
}

// topUsers is the number of users StatusReport lists.
const topUsers = 5

// usersReport reads the top users; nil when nobody talked to the agent
// today or the store does not answer.
func (d *daemon) usersReport() *UsersReport {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	top, err := d.store.TopUsers(ctx, topUsers)
	if err != nil || len(top) == 0 {
		return nil
	}
	l := d.cfg.Limits.PerUser
	return &UsersReport{TurnsPerMinute: l.TurnsPerMinute, TurnsPerDay: l.TurnsPerDay, MaxQueued: l.MaxQueued, Top: top}
}

// printUsers writes the top users, each against the limits (- when there
// is none).
func printUsers(w io.Writer, u *UsersReport) {
	if u == nil {
		return
	}
	limit := func(n int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprint(n)
	}
	fmt.Fprintln(w, "  top users today (limits.per_user):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, t := range u.Top {
		fmt.Fprintf(tw, "    %s\t%s\t%d/%s today\t%d/%s this minute\n", t.Platform, t.UserID, t.Today, limit(u.TurnsPerDay), t.ThisMinute, limit(u.TurnsPerMinute))
	}
	tw.Flush()
}
