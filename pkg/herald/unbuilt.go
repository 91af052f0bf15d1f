// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"

	"github.com/heraldgw/herald/pkg/config"
)

// NotRunnable reports a configuration that is valid but asks for what this
// herald cannot run yet: `cluster.enabled: true` (the cluster package
// holds partition and platform leases, but the dispatcher and the
// platforms do not follow them yet; see docs/scaling.md). herald refuses
// it rather than run as one node that believes it shares the work.
// `store.backend: nats` on one node runs.
func NotRunnable(c *config.Config) error {
	if c.Cluster.Enabled {
		return fmt.Errorf("%s: cluster.enabled: cluster mode is not wired into the daemon yet (see docs/scaling.md); run one herald node per store.nats.prefix without it", c.File)
	}
	return nil
}
