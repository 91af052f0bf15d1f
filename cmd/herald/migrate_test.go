// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/herald"
)

// TestMigrateCommand runs `herald migrate hermes` as main does: a dry run,
// a run, and a refused run over an edited file, and checks that no secret
// of the fixture reaches stdout or stderr.
func TestMigrateCommand(t *testing.T) {
	home := "../../pkg/migrate/hermes/testdata/full/home"
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	run := func(args ...string) int {
		return runMigrate(append([]string{"hermes", "--hermes-home", home, "--out", out}, args...), &stdout, &stderr)
	}
	if code := run("--dry-run"); code != herald.ExitOK {
		t.Fatalf("dry run: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "herald.yaml")); err == nil {
		t.Fatal("dry run wrote herald.yaml")
	}
	if code := run(); code != herald.ExitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	cfg := filepath.Join(out, "herald.yaml")
	if err := os.WriteFile(cfg, []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(); code != herald.ExitFailure {
		t.Fatalf("run over an edited file: exit %d, want %d", code, herald.ExitFailure)
	}
	if !strings.Contains(stderr.String(), "--force") {
		t.Errorf("the refusal does not mention --force: %s", stderr.String())
	}
	if code := run("--force"); code != herald.ExitOK {
		t.Fatalf("--force: exit %d\n%s", code, stderr.String())
	}
	for name, s := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if strings.Contains(s, "FIXTURE") {
			t.Errorf("a secret of the fixture appears in %s", name)
		}
	}
	if code := runMigrate([]string{"openclaw"}, &stdout, &stderr); code != herald.ExitUsage {
		t.Errorf("unknown source: exit %d, want %d", code, herald.ExitUsage)
	}
	if code := runMigrate([]string{"hermes", "extra"}, &stdout, &stderr); code != herald.ExitUsage {
		t.Errorf("stray argument: exit %d, want %d", code, herald.ExitUsage)
	}
}
