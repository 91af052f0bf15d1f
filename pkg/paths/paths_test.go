// SPDX-License-Identifier: Apache-2.0

package paths

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestUnitsAndPackagesAgree: the unit files and the package description use
// the same paths as the constants.
func TestUnitsAndPackagesAgree(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct{ file, want string }{
		{"units/herald.service", "ExecStart=/usr/bin/herald run --config " + ConfigFile + "\n"},
		{"units/herald.service", "ExecReload=+/usr/bin/herald reload --admin-socket " + AdminSocket + "\n"},
		{"units/herald.service", "LoadCredential=herald:" + CredentialsDir + "\n"},
		{"units/herald.service", "WorkingDirectory=" + StateDir + "\n"},
		{"units/herald.service", "StateDirectory=" + filepath.Base(StateDir) + "\n"},
		{"units/herald.service", "RuntimeDirectory=" + filepath.Base(RuntimeDir) + "\n"},
		{"units/herald.service", "ConfigurationDirectory=" + filepath.Base(ConfigDir) + "\n"},
		{"units/herald-admin.socket", "ListenStream=" + AdminSocket + "\n"},
		{"packaging/nfpm.yaml", "dst: " + ConfigFile + ","},
		{"packaging/nfpm.yaml", "dst: " + CredentialsDir + ","},
	} {
		if !strings.Contains(read(c.file), c.want) {
			t.Errorf("%s lacks %q", c.file, c.want)
		}
	}
	if filepath.Dir(StoreFile) != StateDir || filepath.Dir(AdminSocket) != RuntimeDir || filepath.Dir(CredentialsDir) != ConfigDir {
		t.Error("a path is outside its directory")
	}
}
