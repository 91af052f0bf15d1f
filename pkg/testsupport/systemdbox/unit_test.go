// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		line string
		want mountEntry
		ok   bool
	}{
		{"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
			mountEntry{root: "/", point: "/sys/fs/cgroup/unified", fstype: "cgroup2", source: "cgroup2"}, true},
		{"50 27 254:0 /srv/a\\040b /mnt/x\\011y rw shared:1 - ext4 /dev/vda rw",
			mountEntry{root: "/srv/a b", point: "/mnt/x\ty", fstype: "ext4", source: "/dev/vda"}, true},
		{"garbage", mountEntry{}, false},
	} {
		got, ok := parseMountinfo(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseMountinfo(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestShareSpec(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	for _, tc := range []struct {
		name    string
		shares  []Share
		want    string // exact spec, or the error's substring
		wantErr bool
	}{
		{"none", nil, "", false},
		{"default guest", []Share{{Host: dir}}, "d\t" + realDir + "\t/srv/herald-test\n", false},
		{"symlink resolved, file", []Share{{Host: link, Guest: "/opt/a"}, {Host: file, Guest: "/etc/f"}},
			"d\t" + realDir + "\t/opt/a\nf\t" + filepath.Join(realDir, "f") + "\t/etc/f\n", false},
		{"relative guest", []Share{{Host: dir, Guest: "opt"}}, "absolute and clean", true},
		{"unclean guest", []Share{{Host: dir, Guest: "/opt/../etc"}}, "absolute and clean", true},
		{"root guest", []Share{{Host: dir, Guest: "/"}}, "absolute and clean", true},
		{"duplicate", []Share{{Host: dir}, {Host: file, Guest: DefaultSharePath}}, "two shares", true},
		{"missing host", []Share{{Host: filepath.Join(dir, "nope")}}, "no such file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shareSpec(tc.shares)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("shareSpec = %q, %v; want error containing %q", got, err, tc.want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("shareSpec = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		re   interface{ MatchString(string) bool }
		s    string
		want bool
	}{
		{unitNameRE, "systemd-udevd.service", true},
		{unitNameRE, "getty@tty1.service", true},
		{unitNameRE, `sys-kernel-debug.mount`, true},
		{unitNameRE, "../../etc/passwd", false},
		{unitNameRE, "a b.service", false},
		{unitNameRE, "noext", false},
		{nameRE, "go123-1", true},
		{nameRE, "default", true},
		{nameRE, "../x", false},
		{nameRE, "", false},
		{nameRE, strings.Repeat("a", 65), false},
	} {
		if got := tc.re.MatchString(tc.s); got != tc.want {
			t.Errorf("%v.MatchString(%q) = %v, want %v", tc.re, tc.s, got, tc.want)
		}
	}
	for _, m := range DefaultMasks {
		if !unitNameRE.MatchString(m) {
			t.Errorf("DefaultMasks has invalid unit name %q", m)
		}
	}
}

func TestRing(t *testing.T) {
	var r ring
	r.Write([]byte("head"))
	big := strings.Repeat("x", ringSize)
	r.Write([]byte(big))
	r.Write([]byte("tail"))
	got := r.String()
	if len(got) != ringSize || !strings.HasSuffix(got, "xtail") || strings.Contains(got, "head") {
		t.Errorf("ring kept %d bytes, suffix %q", len(got), got[len(got)-8:])
	}
}

func TestProcAlive(t *testing.T) {
	self, err := procOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !self.alive() {
		t.Error("own process not alive")
	}
	if (proc{PID: self.PID, Start: self.Start + 1}).alive() {
		t.Error("a different start time counts as alive (PID reuse)")
	}
	if (proc{}).alive() {
		t.Error("zero proc alive")
	}
}
