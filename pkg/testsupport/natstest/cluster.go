// SPDX-License-Identifier: Apache-2.0

package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster starts n JetStream servers clustered over routes on
// 127.0.0.1, waits until the JetStream meta group has a leader, and stops
// them when the test ends.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	servers, err := Run(Config{Dir: t.TempDir(), N: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Shutdown(servers) })
	return servers
}
