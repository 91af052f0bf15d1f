// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/secret"
)

type prepConf struct{ bad bool }

func (c *prepConf) Validate() error {
	if c.bad {
		return errors.New("bad key")
	}
	return nil
}

func TestPrepare(t *testing.T) {
	if _, err := Prepare[prepConf]("kind", nil, Env{}); err == nil || err.Error() != "kind: no configuration" {
		t.Fatalf("nil configuration: %v", err)
	}
	if _, err := Prepare("kind", &prepConf{bad: true}, Env{}); err == nil || err.Error() != "kind: bad key" {
		t.Fatalf("invalid configuration: %v", err)
	}
	env, err := Prepare("kind", &prepConf{}, Env{})
	if err != nil || env.Name != "kind" || env.Log == nil || env.Report == nil || env.Metrics == nil {
		t.Fatalf("Prepare = %+v, %v; want defaults and the type as name", env, err)
	}
	if env, _ := Prepare("kind", &prepConf{}, Env{Name: "chat"}); env.Name != "chat" {
		t.Fatalf("instance name %q, want chat", env.Name)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rd Secrets
	if v := rd.Read("token", secret.Ref{File: good}); v.Reveal() != "s3cret" || rd.Err() != nil {
		t.Fatalf("Read = %q, %v", v.Reveal(), rd.Err())
	}
	rd.Read("app_secret", secret.Ref{File: filepath.Join(dir, "missing")})
	if v := rd.Read("token", secret.Ref{File: good}); !v.IsZero() {
		t.Fatal("Read after an error read a value")
	}
	if err := rd.Err(); err == nil || !strings.HasPrefix(err.Error(), "app_secret: ") {
		t.Fatalf("Err = %v, want the first error under app_secret", err)
	}
}

func TestCallbackPath(t *testing.T) {
	for _, tc := range []struct{ conf, name, want string }{
		{"/custom", "chat", "/custom"},
		{"", "chat", "/wecom/chat"},
		{"", "a b", ""},
	} {
		got, err := CallbackPath(tc.conf, "/wecom/", tc.name)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("CallbackPath(%q, %q) = %q, %v; want %q", tc.conf, tc.name, got, err, tc.want)
		}
	}
}
