// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/heraldgw/herald/pkg/sandbox"
	"github.com/heraldgw/herald/pkg/testsupport/testbuild"
)

// buildDir holds what every sandbox shares at /srv/herald-test: the herald
// binary and a copy of units/. Empty when the sandbox is unavailable.
var buildDir string

// Guest paths of the shared build.
const (
	guestShare  = "/srv/herald-test"
	guestBinary = guestShare + "/herald"
	guestUnits  = guestShare + "/units"
)

func TestMain(m *testing.M) {
	if ok, why := sandbox.Available(); !ok {
		fmt.Println("e2e: skipping the real-systemd suite:", why)
		os.Exit(m.Run()) // every test skips itself via sandbox.New
	}
	dir, err := os.MkdirTemp("", "herald-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	buildDir = dir
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles herald as `make build` does (static, no race detector: the
// binary runs under the unit's full hardening) plus the test build tag (the
// fault platform and the main-loop wedge), and copies the units.
func build(dir string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", testbuild.Tag, "-o", filepath.Join(dir, "herald"), "./cmd/herald")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	units := filepath.Join(dir, "units")
	if err := os.MkdirAll(units, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(root, "units"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() { // units/user: herald install --user embeds those
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, "units", e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(units, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
