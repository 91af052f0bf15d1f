// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/heraldgw/herald/pkg/adminapi"
)

// printUsers writes the top users, each against the limits (- when there
// is none).
func printUsers(w io.Writer, u *adminapi.UsersReport) {
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
