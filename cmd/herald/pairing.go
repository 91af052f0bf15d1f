// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
)

const pairingUsage = `usage: herald pairing list [--json]
       herald pairing approve [--no-notify] PLATFORM CODE
       herald pairing revoke PLATFORM USER

Lets users in without editing the configuration, on platforms with
dm_policy: pairing. A user the platform does not know who writes a direct
message gets an 8-character code (valid for an hour, at most 3 pending per
platform); their message does not reach the agent. list shows the pending
codes and the approved users; approve lets the code's user talk to the
agent and tells them so (unless --no-notify); revoke withdraws an approval.
Approvals are kept in herald's store: they survive restarts and reloads.
Talks to the running herald's admin socket (root or herald's user).

flags:
  --config FILE        find the admin socket from this configuration
  --admin-socket PATH  the admin socket (default: found as status does)
  --json               list: print JSON
  --no-notify          approve: do not message the user
`

// runPairing is `herald pairing`.
func runPairing(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(stderr, pairingUsage)
			return herald.ExitUsage
		}
		fmt.Fprint(stdout, pairingUsage)
		return herald.ExitOK
	}
	sub := args[0]
	fs := flag.NewFlagSet("herald pairing "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	cfg := fs.String("config", "", "")
	socket := fs.String("admin-socket", "", "")
	asJSON := fs.Bool("json", false, "")
	noNotify := fs.Bool("no-notify", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, pairingUsage)
			return herald.ExitOK
		}
		fmt.Fprint(stderr, pairingUsage)
		return herald.ExitUsage
	}
	want := map[string]int{"list": 0, "approve": 2, "revoke": 2}
	n, ok := want[sub]
	if !ok || fs.NArg() != n {
		fmt.Fprint(stderr, pairingUsage)
		return herald.ExitUsage
	}
	c := &herald.SendClient{Socket: *socket}
	if c.Socket == "" {
		c.Socket = herald.AdminSocket(*cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch sub {
	case "list":
		l, err := c.Pairings(ctx)
		if err != nil {
			return report(fmt.Errorf("pairing list: %w", err), stderr)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(l)
		} else {
			herald.PrintPairings(stdout, l)
		}
	case "approve":
		notify := !*noNotify
		res, err := c.ApprovePairing(ctx, herald.PairingApprove{Platform: fs.Arg(0), Code: fs.Arg(1), Notify: &notify})
		if err != nil {
			return report(fmt.Errorf("pairing approve: %w", err), stderr)
		}
		fmt.Fprintf(stdout, "approved: user %s on %s may talk to the agent\n", res.UserID, res.Platform)
		if res.Error != "" {
			fmt.Fprintf(stderr, "herald: the user was not told: %s\n", res.Error)
		}
	case "revoke":
		res, err := c.RevokePairing(ctx, fs.Arg(0), fs.Arg(1))
		if err != nil {
			return report(fmt.Errorf("pairing revoke: %w", err), stderr)
		}
		fmt.Fprintf(stdout, "revoked: user %s on %s may no longer talk to the agent\n", res.UserID, res.Platform)
	}
	return herald.ExitOK
}
