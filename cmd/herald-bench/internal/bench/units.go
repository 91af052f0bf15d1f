// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"strings"

	"github.com/heraldgw/herald/pkg/paths"
)

// The floor runs under a unit derived from herald's own, so that both pay
// for the same service setup (user, credentials, namespaces, seccomp,
// directories) and the difference measured is the program. The derivation is
// text-based and tested; it keeps every [Service] setting except the ones
// that name herald's files.

// rewriteUnit copies a unit file without comments, blank lines and its
// [Install] section, passing every KEY=value through edit, which returns
// the value to write or keep=false to drop the line.
func rewriteUnit(src string, edit func(key, val string) (string, bool)) string {
	var b strings.Builder
	section := ""
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			continue
		}
		if strings.HasPrefix(t, "[") {
			section = t
			if section != "[Install]" {
				fmt.Fprintf(&b, "\n%s\n", section)
			}
			continue
		}
		if section == "[Install]" {
			continue
		}
		key, val, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		if val, keep := edit(key, val); keep {
			fmt.Fprintf(&b, "%s=%s\n", key, val)
		}
	}
	return strings.TrimLeft(b.String(), "\n")
}

// floorService derives floor.service from herald.service: ExecStart= runs
// exec, the socket is sock (and herald-admin.socket is dropped), herald's
// directories are renamed to dir, ExecReload= and [Install] are dropped.
func floorService(heraldService, exec, sock, dir string) string {
	return rewriteUnit(heraldService, func(key, val string) (string, bool) {
		switch key {
		case "Description":
			return "herald-bench floor: takes its socket, sends READY=1, serves a fixed reply (unit derived from herald.service)", true
		case "Documentation", "ExecReload":
			return "", false
		case "Requires", "After", "Sockets", "Wants", "BindsTo", "PartOf":
			return renameSockets(val, sock), true
		case "ExecStart":
			return exec, true
		case "StateDirectory", "RuntimeDirectory", "LogsDirectory", "CacheDirectory":
			if val == "herald" {
				return dir, true
			}
		case "WorkingDirectory":
			return strings.Replace(val, paths.StateDir, "/var/lib/"+dir, 1), true
		}
		return val, true
	})
}

// renameSockets maps herald.socket to sock and drops herald-admin.socket in a
// space-separated unit list.
func renameSockets(list, sock string) string {
	var out []string
	for _, u := range strings.Fields(list) {
		switch u {
		case "herald.socket":
			out = append(out, sock)
		case "herald-admin.socket":
		default:
			out = append(out, u)
		}
	}
	return strings.Join(out, " ")
}

// floorSocket derives a floor socket from herald.socket: same settings
// (FileDescriptorName=http included), another address and service.
func floorSocket(heraldSocket, listen, service string) string {
	return rewriteUnit(heraldSocket, func(key, val string) (string, bool) {
		switch key {
		case "Description":
			return "herald-bench floor (HTTP listener)", true
		case "Documentation":
			return "", false
		case "ListenStream":
			return listen, true
		case "Service":
			return service, true
		}
		return val, true
	})
}

// bareService is the floor without herald's hardening and user: what the
// same program costs when systemd sets up nothing but the process.
func bareService(exec, sock string) string {
	return fmt.Sprintf(`[Unit]
Description=herald-bench bare floor (no sandboxing)
Requires=%[2]s
After=%[2]s
StartLimitIntervalSec=10s
StartLimitBurst=50

[Service]
Type=notify
NotifyAccess=main
ExecStart=%[1]s
Sockets=%[2]s
`, exec, sock)
}
