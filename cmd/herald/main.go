// SPDX-License-Identifier: Apache-2.0

// Command herald is a systemd-native gateway between chat platforms and an
// AI agent backend. main only parses the command line and maps errors to
// exit codes; the lifecycle is herald.Run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/version"
)

const usage = `usage: herald <command> [flags]

commands:
  run [--config FILE]            run the gateway in the foreground (default: built-in demo configuration)
  check-config FILE              validate a configuration file and exit (78 if invalid)
  reload [--config FILE | --admin-socket PATH]
                                 make the running herald reload its configuration; waits until done
  status [--json] [--unit NAME] [--user] [--config FILE]
                                 show the service and what herald is doing
  doctor [--json] [--unit NAME] [--user] [--config FILE]
                                 check the installation and say what to fix
  migrate hermes [--hermes-home DIR] [--profile NAME] [--out DIR] [--dry-run] [--force]
                                 write a herald configuration from a Hermes gateway's settings
  version                        print the version
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return herald.ExitUsage
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("herald "+cmd, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	configPath := fs.String("config", "", "configuration file")
	switch cmd {
	case "run":
		if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
			return herald.ExitUsage
		}
		err := herald.Run(context.Background(), herald.Options{
			ConfigPath: *configPath,
			Stderr:     os.Stderr,
			OnListening: func(httpAddr, adminAddr string) {
				if *configPath == "" {
					fmt.Fprintf(os.Stderr, "herald: listening on http://%s (webhook: POST /hooks/webhook), admin socket %s; Ctrl-C stops\n", httpAddr, adminAddr)
				}
			},
			OnStopping: func(bound time.Duration) {
				// Last resort: the stop is bounded by construction; if it
				// ever overruns, exit rather than wait for SIGKILL.
				time.AfterFunc(bound+3*time.Second, func() {
					fmt.Fprintf(os.Stderr, "herald: stop did not finish within its bound of %v; exiting\n", bound)
					os.Exit(herald.ExitFailure)
				})
			},
		})
		return report(err)
	case "check-config":
		credDir := fs.String("credentials-dir", "/etc/herald/credentials", "where systemd credentials named in the file are read from outside the service")
		if err := fs.Parse(args); err != nil {
			return herald.ExitUsage
		}
		path := *configPath
		if fs.NArg() == 1 && path == "" {
			path = fs.Arg(0)
		}
		if path == "" || fs.NArg() > 1 {
			fmt.Fprint(os.Stderr, usage)
			return herald.ExitUsage
		}
		return report(herald.CheckConfig(path, *credDir, os.Stdout))
	case "reload":
		socket := fs.String("admin-socket", "", "admin socket path (default: from the configuration)")
		timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
		if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
			return herald.ExitUsage
		}
		path := *socket
		if path == "" {
			var err error
			if path, err = herald.AdminSocket(*configPath); err != nil {
				return report(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		return report(herald.Reload(ctx, path, os.Stdout))
	case "status", "doctor":
		jsonOut := fs.Bool("json", false, "machine-readable output")
		unit := fs.String("unit", "", "unit name (default: from the configuration, herald.service)")
		user := fs.Bool("user", false, "ask the user service manager instead of the system one")
		socket := fs.String("admin-socket", "", "admin socket path (default: from the configuration)")
		if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
			return herald.ExitUsage
		}
		o := herald.InspectOptions{ConfigPath: *configPath, Unit: *unit, User: *user, AdminSocket: *socket, JSON: *jsonOut, Out: os.Stdout}
		if cmd == "status" {
			return report(herald.Status(context.Background(), o))
		}
		return report(herald.Doctor(context.Background(), o))
	case "migrate":
		return runMigrate(args, os.Stdout, os.Stderr)
	case "version", "--version", "-v":
		fmt.Println(version.String())
		return herald.ExitOK
	case "help", "--help", "-h":
		fmt.Print(usage)
		return herald.ExitOK
	default:
		fmt.Fprintf(os.Stderr, "herald: unknown command %q\n\n%s", cmd, usage)
		return herald.ExitUsage
	}
}

// report prints err (if any) and returns its exit code.
func report(err error) int {
	if err != nil && !herald.AlreadyLogged(err) {
		fmt.Fprintf(os.Stderr, "herald: %v\n", err)
	}
	return herald.ExitCode(err)
}
