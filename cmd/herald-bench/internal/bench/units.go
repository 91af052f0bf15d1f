// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"strings"
)

// The floor runs under a unit derived from herald's own, so that both pay
// for the same service setup (user, credentials, namespaces, seccomp,
// directories) and the difference measured is the program. The derivation is
// text-based and tested; it keeps every [Service] setting except the ones
// that name herald's files.

// floorService derives floor.service from herald.service: ExecStart= runs
// exec, the socket is sock (and herald-admin.socket is dropped), herald's
// directories are renamed to dir, ExecReload= and [Install] are dropped.
func floorService(heraldService, exec, sock, dir string) string {
	var b strings.Builder
	section := ""
	for _, line := range strings.Split(heraldService, "\n") {
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
		switch key {
		case "Description":
			val = "herald-bench floor: takes its socket, sends READY=1, serves a fixed reply (unit derived from herald.service)"
		case "Documentation", "ExecReload":
			continue
		case "Requires", "After", "Sockets", "Wants", "BindsTo", "PartOf":
			val = renameSockets(val, sock)
		case "ExecStart":
			val = exec
		case "StateDirectory", "RuntimeDirectory", "LogsDirectory", "CacheDirectory":
			if val == "herald" {
				val = dir
			}
		case "WorkingDirectory":
			val = strings.Replace(val, "/var/lib/herald", "/var/lib/"+dir, 1)
		}
		fmt.Fprintf(&b, "%s=%s\n", key, val)
	}
	return strings.TrimLeft(b.String(), "\n")
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
	var b strings.Builder
	section := ""
	for _, line := range strings.Split(heraldSocket, "\n") {
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
		switch key {
		case "Description":
			val = "herald-bench floor (HTTP listener)"
		case "Documentation":
			continue
		case "ListenStream":
			val = listen
		case "Service":
			val = service
		}
		fmt.Fprintf(&b, "%s=%s\n", key, val)
	}
	return strings.TrimLeft(b.String(), "\n")
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
