// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/herald"
)

// TestSubcommandHelp: `herald <command> -h` (and --help, -help, and
// `herald help <command>`) prints that command's own help, with each of
// its flags, on stdout and exits 0, as Go's flag convention and systemctl
// do; nothing runs.
func TestSubcommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {c.name, "-help"}, {"help", c.name}, {c.name, "--json", "-h"}} {
			if args[1] == "--json" && c.name != "status" && c.name != "doctor" {
				continue
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := run(args, &stdout, &stderr)
				if code != herald.ExitOK {
					t.Errorf("exit %d, want 0", code)
				}
				if stderr.Len() > 0 {
					t.Errorf("stderr: %q", stderr.String())
				}
				out := stdout.String()
				if !strings.HasPrefix(out, "usage: herald "+c.name) {
					t.Errorf("stdout does not start with the command's usage:\n%s", out)
				}
				if strings.Contains(out, "commands:") {
					t.Errorf("stdout is the global usage:\n%s", out)
				}
				fs := newFlagSet(c.name)
				defineFlags(fs)
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "-"+f.Name) || !strings.Contains(out, f.Usage) {
						t.Errorf("help does not describe -%s:\n%s", f.Name, out)
					}
				})
			})
		}
	}
}

// TestUsageErrors: a bad flag or argument prints the command's help on
// stderr and exits 64; an unknown command prints the global usage.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // start of stderr
	}{
		{[]string{"status", "--bogus"}, "flag provided but not defined: -bogus\nusage: herald status"},
		{[]string{"reload", "extra"}, "herald reload: unexpected argument \"extra\"\nusage: herald reload"},
		{[]string{"run", "--config"}, "flag needs an argument: -config\nusage: herald run"},
		{[]string{"check-config"}, "herald check-config: give one configuration file\nusage: herald check-config"},
		{[]string{"version", "x"}, "herald version: unexpected argument \"x\"\nusage: herald version"},
		{[]string{"frobnicate"}, "herald: unknown command \"frobnicate\"\n\nusage: herald <command>"},
		{nil, "usage: herald <command>"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != herald.ExitUsage {
				t.Errorf("exit %d, want %d", code, herald.ExitUsage)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			if !strings.HasPrefix(stderr.String(), tc.want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", stderr.String(), tc.want)
			}
		})
	}
}

// TestGlobalHelp: `herald -h`, `--help` and `help` print the global usage,
// listing every command, on stdout and exit 0.
func TestGlobalHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != herald.ExitOK || stderr.Len() > 0 {
			t.Errorf("herald %s: exit %d, stderr %q", arg, code, stderr.String())
		}
		for _, c := range commands {
			if !strings.Contains(stdout.String(), "  "+c.name+" ") {
				t.Errorf("herald %s does not list %s:\n%s", arg, c.name, stdout.String())
			}
		}
	}
}
