// SPDX-License-Identifier: Apache-2.0

//go:build !heraldtest

package all_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	_ "github.com/heraldgw/herald/pkg/adapter/all"
)

// TestDefaultBuildHasNoFaultPlatform: the registry of a build without the
// heraldtest tag, which is what `go build ./cmd/herald` and `make build`
// produce, has every platform and no fault-injection one.
func TestDefaultBuildHasNoFaultPlatform(t *testing.T) {
	if _, ok := adapter.Lookup("fault"); ok {
		t.Fatal(`the default build registers the "fault" adapter type`)
	}
	for _, name := range []string{"discord", "feishu", "slack", "telegram", "webhook"} {
		if _, ok := adapter.Lookup(name); !ok {
			t.Errorf("the default build lacks the %q adapter type", name)
		}
	}
}

// TestHeraldDoesNotLinkFault checks cmd/herald itself: its default build
// does not depend on the fault package at all, and a test build does.
func TestHeraldDoesNotLinkFault(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	const fault = "github.com/heraldgw/herald/pkg/adapter/fault"
	deps := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append(append([]string{"list", "-deps"}, args...), "./cmd/herald")...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %v: %v", args, err)
		}
		return "\n" + string(out)
	}
	if strings.Contains(deps(), "\n"+fault+"\n") {
		t.Errorf("go build ./cmd/herald links %s", fault)
	}
	if !strings.Contains(deps("-tags", "heraldtest"), "\n"+fault+"\n") {
		t.Errorf("go build -tags heraldtest ./cmd/herald does not link %s", fault)
	}
}
