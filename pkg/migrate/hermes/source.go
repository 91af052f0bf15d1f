// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is what was read from one Hermes home.
type Source struct {
	// Home is the directory read: the Hermes home, or the profile's
	// directory under it.
	Home string
	// Profile is the profile name, "" for the default profile.
	Profile string
	// Config is config.yaml (nil when absent).
	Config map[string]any
	// Env holds the .env assignments in file order.
	Env []EnvVar
	// Approved maps a Hermes platform name to the user ids approved by
	// pairing (`hermes pairing approve`), sorted.
	Approved map[string][]string
	// LegacyJSON is true when the home has a gateway.json, which this
	// command does not read.
	LegacyJSON bool
	// Warnings about lines or files that could not be read. They never
	// contain a value.
	Warnings []string

	env map[string]string
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Load reads the Hermes home at dir, or its profile when profile is not "".
// A profile is a complete Hermes home of its own under
// <dir>/profiles/<name>/ (its own config.yaml, .env and pairing files).
func Load(dir, profile string) (*Source, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	home := dir
	if profile != "" && profile != "default" {
		if !profileName.MatchString(profile) {
			return nil, fmt.Errorf("hermes: profile name %q is not a plain name", profile)
		}
		home = filepath.Join(dir, "profiles", profile)
	} else {
		profile = ""
	}
	s := &Source{Home: home, Profile: profile, Approved: map[string][]string{}, env: map[string]string{}}
	found := false

	b, err := os.ReadFile(filepath.Join(home, "config.yaml"))
	switch {
	case err == nil:
		found = true
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				// A type error quotes the value, which may be a secret.
				return nil, fmt.Errorf("hermes: %s: not a YAML mapping", filepath.Join(home, "config.yaml"))
			}
			// A syntax error names a line and what was expected.
			return nil, fmt.Errorf("hermes: %s: %w", filepath.Join(home, "config.yaml"), err)
		}
		s.Config = m
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("hermes: read config.yaml: %w", err)
	}

	b, err = os.ReadFile(filepath.Join(home, ".env"))
	switch {
	case err == nil:
		found = true
		vars, warns := ParseDotenv(b)
		s.Warnings = append(s.Warnings, warns...)
		for _, v := range vars {
			if _, dup := s.env[v.Name]; dup {
				// The later assignment wins, as in python-dotenv.
				for i := range s.Env {
					if s.Env[i].Name == v.Name {
						s.Env = append(s.Env[:i], s.Env[i+1:]...)
						break
					}
				}
			}
			s.env[v.Name] = v.Value
			s.Env = append(s.Env, v)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("hermes: read .env: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("hermes: neither config.yaml nor .env in %s: is it a Hermes home? (--hermes-home, --profile)", home)
	}

	if _, err := os.Stat(filepath.Join(home, "gateway.json")); err == nil {
		s.LegacyJSON = true
	}
	// Pairing approvals: <home>/platforms/pairing/ (current) and
	// <home>/pairing/ (older releases), files <platform>-approved.json, a
	// JSON object keyed by user id. Hermes merges both directories.
	approved := map[string]map[string]bool{}
	for _, d := range []string{filepath.Join(home, "platforms", "pairing"), filepath.Join(home, "pairing")} {
		files, _ := filepath.Glob(filepath.Join(d, "*-approved.json"))
		for _, f := range files {
			platform := strings.TrimSuffix(filepath.Base(f), "-approved.json")
			b, err := os.ReadFile(f)
			if err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("%s: cannot read: %v", f, errors.Unwrap(err)))
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("%s: not a JSON object; ignored", f))
				continue
			}
			if approved[platform] == nil {
				approved[platform] = map[string]bool{}
			}
			for id := range m {
				if strings.TrimSpace(id) != "" {
					approved[platform][strings.TrimSpace(id)] = true
				}
			}
		}
	}
	for p, ids := range approved {
		for id := range ids {
			s.Approved[p] = append(s.Approved[p], id)
		}
		sort.Strings(s.Approved[p])
	}
	return s, nil
}

// Getenv returns the .env value of name, trimmed; ok is false when unset or
// empty (Hermes treats an empty value as unset).
func (s *Source) Getenv(name string) (string, bool) {
	v := strings.TrimSpace(s.env[name])
	return v, v != ""
}

// DefaultHome is where Hermes keeps its home: $HERMES_HOME, else ~/.hermes.
// Under sudo, when root has no ~/.hermes, the invoking user's is used.
func DefaultHome() string {
	if h := os.Getenv("HERMES_HOME"); h != "" {
		return h
	}
	home, _ := os.UserHomeDir()
	dir := filepath.Join(home, ".hermes")
	if _, err := os.Stat(dir); err != nil && os.Geteuid() == 0 {
		if u := os.Getenv("SUDO_USER"); u != "" && profileName.MatchString(u) {
			if alt := sudoHome(u); alt != "" {
				return filepath.Join(alt, ".hermes")
			}
		}
	}
	return dir
}

// sudoHome returns the home directory of the named user, or "".
func sudoHome(name string) string {
	u, err := user.Lookup(name)
	if err != nil {
		return ""
	}
	return u.HomeDir
}
