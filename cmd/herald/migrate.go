// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/migrate/hermes"
)

const migrateUsage = `usage: herald migrate hermes [--hermes-home DIR] [--profile NAME] [--out DIR] [--dry-run] [--force]

Reads the Hermes Agent gateway's settings (config.yaml, .env, pairing
approvals) and writes a herald configuration: DIR/herald.yaml, one 0600
file per secret in DIR/credentials/, and the users approved by pairing in
DIR/pairing-import.json, which herald imports into its pairing store once,
at its next start. Prints a table of every Hermes gateway
setting and what it became, and how to turn each migrated platform off in
Hermes. Secrets are never printed.

flags:
  --hermes-home DIR  the Hermes home (default $HERMES_HOME, else ~/.hermes)
  --profile NAME     a Hermes profile (DIR/profiles/NAME)
  --out DIR          where to write (default /etc/herald as root, else
                     $XDG_CONFIG_HOME/herald or ~/.config/herald)
  --dry-run          write nothing; show the table, the YAML and the files
  --force            replace files that differ (the old herald.yaml is kept
                     as herald.yaml.bak)
`

// runMigrate is `herald migrate`.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "hermes" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
			fmt.Fprint(stdout, migrateUsage)
			return herald.ExitOK
		}
		fmt.Fprint(stderr, migrateUsage)
		return herald.ExitUsage
	}
	fs := flag.NewFlagSet("herald migrate hermes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var o hermes.Options
	fs.StringVar(&o.HermesHome, "hermes-home", "", "the Hermes home")
	fs.StringVar(&o.Profile, "profile", "", "a Hermes profile")
	fs.StringVar(&o.Out, "out", "", "where to write")
	fs.BoolVar(&o.DryRun, "dry-run", false, "write nothing")
	fs.BoolVar(&o.Force, "force", false, "replace files that differ")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, migrateUsage)
			return herald.ExitOK
		}
		fmt.Fprint(stderr, migrateUsage)
		return herald.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, migrateUsage)
		return herald.ExitUsage
	}
	o.Stdout = stdout
	if err := hermes.Run(o); err != nil {
		fmt.Fprintf(stderr, "herald: migrate: %v\n", err)
		return herald.ExitFailure
	}
	return herald.ExitOK
}
