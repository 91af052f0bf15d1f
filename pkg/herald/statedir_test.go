// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"testing"

	"github.com/heraldgw/herald/pkg/systemd/unitstate"
)

func TestStateDirScope(t *testing.T) {
	for _, c := range []struct {
		scope unitstate.Scope
		dir   string
		ok    bool
	}{
		{unitstate.User, "/home/alice/.local/state/herald", true},
		{unitstate.User, "/var/lib/herald", false},
		{unitstate.User, "/var/lib/herald/", false},
		{unitstate.User, "/var/lib/herald/sub", false},
		{unitstate.User, "/var/lib/heraldx", true},
		{unitstate.System, "/var/lib/herald", true},
		{unitstate.System, "/home/alice/.local/state/herald", false},
		{unitstate.NotSystemd, "/var/lib/herald", true},
		{unitstate.NotSystemd, "/home/alice/.local/state/herald", true},
	} {
		err := checkStateDirScope(c.scope, c.dir)
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v, want ok=%v", c.scope, c.dir, err, c.ok)
		}
	}
}
