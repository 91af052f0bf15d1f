// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/systemd/unitstate"
)

// userStateSuffix ends the user service's state directory
// (~/.local/state/herald, the user unit's STATE_DIRECTORY).
const userStateSuffix = "/.local/state/herald"

// checkStateDirScope keeps the system service and a user service from
// sharing a state directory (a message store, an instance lock): a user
// service may not use the system one, the system service no user one. A
// herald not run by systemd may use either (for example to inspect a
// copy); the directory's lock still excludes a running instance.
func checkStateDirScope(scope unitstate.Scope, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil // the lock reports an unusable directory
	}
	switch {
	case scope == unitstate.User && (abs == paths.StateDir || strings.HasPrefix(abs, paths.StateDir+"/")):
		return fmt.Errorf("state_dir %s belongs to the system service (herald.service of the system manager); a user service keeps its state in ~%s: leave state_dir unset", abs, userStateSuffix)
	case scope == unitstate.System && strings.HasSuffix(abs, userStateSuffix):
		return fmt.Errorf("state_dir %s is a user service's state directory; the system service keeps its state in %s: leave state_dir unset", abs, paths.StateDir)
	}
	return nil
}
