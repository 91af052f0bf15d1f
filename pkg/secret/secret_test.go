// SPDX-License-Identifier: Apache-2.0

package secret

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "herald_fromdir"), []byte("from-dir"), 0o600)
	os.WriteFile(filepath.Join(dir, "empty"), []byte(" \n"), 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	tests := []struct {
		ref     Ref
		want    string
		wantErr string
	}{
		{Ref{Credential: "plain"}, "s3cret", ""},
		{Ref{Credential: "fromdir"}, "from-dir", ""},
		{Ref{File: filepath.Join(dir, "plain")}, "s3cret", ""},
		{Ref{Credential: "missing"}, "", "does not exist"},
		{Ref{Credential: "empty"}, "", "is empty"},
		{Ref{File: "relative"}, "", "absolute path"},
		{Ref{Credential: "a/b"}, "", "must not contain"},
		{Ref{Credential: "x", File: "/y"}, "", "not both"},
		{Ref{}, "", "set credential or file"},
	}
	for _, tt := range tests {
		v, err := tt.ref.Read()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.ref, err, tt.wantErr)
			}
			continue
		}
		if err != nil || v.Reveal() != tt.want {
			t.Errorf("%v: %q %v, want %q", tt.ref, v.Reveal(), err, tt.want)
		}
	}
}

func TestNoCredentialsDirectory(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := (Ref{Credential: "x"}).Read(); !errors.Is(err, ErrNoCredentialsDirectory) {
		t.Fatalf("err %v", err)
	}
}

func TestValueNeverPrints(t *testing.T) {
	v := Value{b: []byte("hunter2")}
	for _, f := range []string{"%v", "%s", "%q", "%x", "%#v", "%+v", "%d"} {
		if out := fmt.Sprintf(f, v); strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74657232") {
			t.Errorf("%s printed the secret: %s", f, out)
		}
	}
	type wrapper struct{ Token Value }
	if out := fmt.Sprintf("%+v", wrapper{v}); strings.Contains(out, "hunter2") {
		t.Errorf("a struct holding a Value printed it: %s", out)
	}
}
