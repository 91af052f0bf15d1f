// SPDX-License-Identifier: Apache-2.0

package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldgw/herald/pkg/paths"
)

// Ref names where a secret lives. Exactly one field is set.
//
// In YAML:
//
//	token: {credential: telegram-token}   # $CREDENTIALS_DIRECTORY/telegram-token
//	token: {file: /etc/herald/telegram.token}
type Ref struct {
	// Credential is the name of a systemd credential (LoadCredential=NAME:…).
	Credential string `yaml:"credential"`
	// File is an absolute path to a file holding the secret.
	File string `yaml:"file"`
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r.Credential == "" && r.File == "" }

// Validate checks the shape of r without reading anything.
func (r Ref) Validate() error {
	switch {
	case r.Credential != "" && r.File != "":
		return errors.New("set either credential or file, not both")
	case r.Credential != "":
		if strings.ContainsAny(r.Credential, "/\x00") || r.Credential == "." || r.Credential == ".." {
			return fmt.Errorf("credential name %q must not contain '/'", r.Credential)
		}
	case r.File != "":
		if !filepath.IsAbs(r.File) {
			return fmt.Errorf("file %q must be an absolute path", r.File)
		}
	default:
		return errors.New("set credential or file")
	}
	return nil
}

// String describes the reference, never the secret.
func (r Ref) String() string {
	if r.Credential != "" {
		return "credential " + r.Credential
	}
	return "file " + r.File
}

// ErrNoCredentialsDirectory is returned for a credential reference when
// $CREDENTIALS_DIRECTORY is not set (herald runs outside systemd or the unit
// lacks LoadCredential=).
var ErrNoCredentialsDirectory = errors.New("$CREDENTIALS_DIRECTORY is not set (is LoadCredential= missing from the unit?)")

// Path returns the file r refers to.
func (r Ref) Path() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	if r.File != "" {
		return r.File, nil
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", fmt.Errorf("%s: %w", r, ErrNoCredentialsDirectory)
	}
	p := filepath.Join(dir, r.Credential)
	if _, err := os.Lstat(p); err != nil {
		// The packaged unit loads the whole directory
		// (LoadCredential=herald:/etc/herald/credentials), and systemd
		// names each file of a directory <id>_<file> (verified on 252):
		// /etc/herald/credentials/telegram-token arrives as
		// herald_telegram-token.
		if alt := filepath.Join(dir, DirectoryPrefix+r.Credential); fileExists(alt) {
			return alt, nil
		}
	}
	return p, nil
}

// DirectoryPrefix is how systemd prefixes credentials loaded from the
// packaged unit's credentials directory; Path finds a credential under its
// plain name or with this prefix.
const DirectoryPrefix = "herald_"

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Read returns the secret with surrounding white space (a trailing newline
// left by an editor) removed. An empty secret is an error.
func (r Ref) Read() (Value, error) {
	p, err := r.Path()
	if err != nil {
		return Value{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if r.Credential != "" && os.Getenv("CREDENTIALS_DIRECTORY") != "" {
				// systemd copies credentials when the service starts: a
				// reload cannot see one added since.
				return Value{}, fmt.Errorf("%s: %s does not exist (systemd passes credentials at start: after adding one to %s, restart herald)", r, p, paths.CredentialsDir)
			}
			return Value{}, fmt.Errorf("%s: %s does not exist", r, p)
		}
		return Value{}, fmt.Errorf("%s: %w", r, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Value{}, fmt.Errorf("%s: %s is empty", r, p)
	}
	return Value{b: b}, nil
}

// Value is a secret read from a Ref. Its formatting methods redact it.
type Value struct{ b []byte }

// Reveal returns the secret. Call it only where the secret is put on the
// wire (an Authorization header, an HMAC key).
func (v Value) Reveal() string { return string(v.b) }

// Bytes returns the secret as bytes, for HMAC keys.
func (v Value) Bytes() []byte { return v.b }

// IsZero reports whether v holds nothing.
func (v Value) IsZero() bool { return len(v.b) == 0 }

// String redacts.
func (v Value) String() string { return "[redacted]" }

// GoString redacts.
func (v Value) GoString() string { return "secret.Value{[redacted]}" }

// Format redacts for every verb, so %x or %q cannot leak the secret.
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }
