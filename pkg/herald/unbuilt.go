// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"

	"github.com/heraldgw/herald/pkg/config"
)

// NotRunnable reports a configuration that is valid but asks for what this
// herald cannot run yet: `store.backend: nats` (the JetStream store exists
// as a package and is tested, but the daemon does not open it; see
// docs/scaling.md). herald refuses it rather than silently running on
// SQLite.
func NotRunnable(c *config.Config) error {
	if c.Store.Backend == "nats" {
		return fmt.Errorf("%s: store.backend: nats is not supported by this herald yet (cluster mode is not wired into the daemon, see docs/scaling.md); use sqlite", c.File)
	}
	return nil
}
