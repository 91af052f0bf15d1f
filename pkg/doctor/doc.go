// SPDX-License-Identifier: Apache-2.0

// Package doctor holds the checks behind `herald status`, `herald doctor`,
// `herald check-config` and the secrets warning of `herald reload`. Status
// asks systemd (over D-Bus) and the running herald (over its admin socket)
// and returns a StatusDoc; Doctor runs every check and returns a Report of
// Checks, each with a Result (Pass, Warn, Fail, Skip) and the fix. The
// herald command prints them, as tables or as JSON.
//
// Nothing here runs inside the daemon: the checks look at the daemon from
// outside, as an operator would (unit state, journal, files, sockets).
package doctor
