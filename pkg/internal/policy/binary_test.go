// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHeraldBinaryLinksNoTestMachinery: the production herald binary links
// neither the NATS server (an in-process server is for tests only; cluster
// nodes connect to an operator's NATS with the client) nor the testing
// package. It reads the binary's package graph as the go tool builds it.
func TestHeraldBinaryLinksNoTestMachinery(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/herald")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/herald: %v", err)
	}
	deps := strings.Fields(string(out))
	if !contains(deps, module+"/cmd/herald") || !contains(deps, module+"/pkg/dispatch") {
		t.Fatalf("go list -deps ./cmd/herald lists %d packages without herald's own: the check checks nothing", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/nats-io/nats-server") || p == "testing" || strings.HasPrefix(p, module+"/pkg/testsupport") {
			t.Errorf("the herald binary links %s: test machinery must stay out of it", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
