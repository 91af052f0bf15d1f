// SPDX-License-Identifier: Apache-2.0

// Package e2e proves herald's lifecycle claims against the real service
// manager: each test boots the machine's own systemd as PID 1 in throw-away
// namespaces (package sandbox), installs the herald binary built from this
// tree with the project's own unit files, and drives it with systemctl,
// asserting with `systemctl show` properties and `journalctl -o json`.
//
// The lifecycle suite (socket activation, restarts with a hung adapter,
// SIGKILL, watchdog, drains, socket continuity through restarts, manual-start
// refusal, reload, journal fields, unit verification, status and doctor)
// installs the binary and units directly; the packaging suite
// (packaging_test.go) builds the .deb and .rpm with scripts/package and
// installs, upgrades under load, removes and purges them. The user-manager
// suite (usermanager_test.go) creates an unprivileged user in the sandbox,
// starts its user@UID.service, and has that user install herald with
// `herald install --user`, run it through the same lifecycle under
// `systemctl --user`, and uninstall it.
//
// The package has tests only. TestMain builds herald once into a directory
// shared read-only into every sandbox at /srv/herald-test (Binary, UnitsDir);
// tests call install to put it in place. Without root or the kernel features
// the sandbox needs, every test is skipped with one line saying why.
package e2e
