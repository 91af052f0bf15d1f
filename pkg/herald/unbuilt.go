// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"fmt"

	"github.com/heraldgw/herald/pkg/config"
)

// NotRunnable reports a configuration that herald cannot run although its
// sections may each look valid: cluster mode without the JetStream store
// its nodes share. config.Load refuses that already; NotRunnable also
// guards a configuration built in code.
func NotRunnable(c *config.Config) error {
	if c.Cluster.Enabled && c.Store.Backend != "nats" {
		return fmt.Errorf("%s: cluster.enabled: requires store.backend: nats (the nodes share its JetStream)", c.File)
	}
	return nil
}
