// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
)

// topUsers is the number of users StatusReport lists.
const topUsers = 5

// usersReport reads the top users; nil when nobody talked to the agent
// today or the store does not answer.
func (d *daemon) usersReport() *adminapi.UsersReport {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	top, err := d.store.TopUsers(ctx, topUsers)
	if err != nil || len(top) == 0 {
		return nil
	}
	l := d.cfg.Limits.PerUser
	return &adminapi.UsersReport{TurnsPerMinute: l.TurnsPerMinute, TurnsPerDay: l.TurnsPerDay, MaxQueued: l.MaxQueued, Top: top}
}
