// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
)

func TestLocalFile(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "out")
	secret := filepath.Join(root, "secret")
	for _, d := range []string{out, secret, filepath.Join(out, "sub")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, n int) {
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(out, "ok.png"), 10)
	write(filepath.Join(out, "sub", "deep.pdf"), 10)
	write(filepath.Join(out, "big.bin"), 2000)
	write(filepath.Join(secret, "key"), 10)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(secret, "key"), filepath.Join(out, "escape")))
	must(os.Symlink(secret, filepath.Join(out, "dirlink")))
	must(os.Symlink(filepath.Join(out, "ok.png"), filepath.Join(out, "inner")))
	// An allowed directory reached through a symlink still counts.
	must(os.Symlink(out, filepath.Join(root, "outlink")))
	dirs := []string{filepath.Join(root, "outlink")}

	for _, p := range []string{
		filepath.Join(out, "ok.png"),
		filepath.Join(out, "sub", "deep.pdf"),
		filepath.Join(out, "inner"),
		filepath.Join(out, "sub", ".", "deep.pdf"),
	} {
		if _, size, err := media.LocalFile(p, dirs, 1000); err != nil || size != 10 {
			t.Errorf("%s: %v size %d", p, err, size)
		}
	}
	for p, want := range map[string]error{
		"relative/ok.png":                         adapter.ErrPermanent,
		filepath.Join(out, "..", "secret", "key"): media.ErrOutsideDirs,
		out + "/sub/../ok.png":                    media.ErrOutsideDirs,
		filepath.Join(out, "escape"):              media.ErrOutsideDirs,
		filepath.Join(out, "dirlink", "key"):      media.ErrOutsideDirs,
		filepath.Join(secret, "key"):              media.ErrOutsideDirs,
		out:                                       media.ErrOutsideDirs,
		filepath.Join(out, "sub"):                 adapter.ErrPermanent,
		filepath.Join(out, "missing"):             adapter.ErrPermanent,
		filepath.Join(out, "big.bin"):             adapter.ErrTooLarge,
		"/dev/null":                               media.ErrOutsideDirs,
	} {
		if _, _, err := media.LocalFile(p, dirs, 1000); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", p, err, want)
		}
	}
	// A device under an allowed directory is refused too.
	if _, _, err := media.LocalFile("/dev/null", []string{"/dev"}, 0); err == nil {
		t.Error("device accepted")
	}
	// No directories: nothing is allowed.
	if _, _, err := media.LocalFile(filepath.Join(out, "ok.png"), nil, 0); !errors.Is(err, media.ErrOutsideDirs) {
		t.Errorf("no dirs: %v", err)
	}
}
