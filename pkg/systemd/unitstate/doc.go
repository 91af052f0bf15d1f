// SPDX-License-Identifier: Apache-2.0

// Package unitstate asks systemd, over D-Bus, about herald's own unit and
// about other herald units (org.freedesktop.systemd1(5):
// https://www.freedesktop.org/software/systemd/man/latest/org.freedesktop.systemd1.html).
//
// Three uses:
//
//   - Self: under systemd, confirm that the environment is really ours (the
//     unit's InvocationID equals $INVOCATION_ID and its MainPID is this
//     process: otherwise sd_notify from us would be dropped under
//     NotifyAccess=main) and read TimeoutStopUSec and WatchdogUSec to size
//     the drain and watchdog budgets.
//   - CheckNotRunning: on a manual start, refuse while herald.service (or a
//     herald@ instance) is active, activating (auto-restart included),
//     deactivating or reloading on the system or the user bus, naming the
//     systemctl/journalctl commands to use instead. This is check-then-act
//     and blind to herald processes not run by systemd; the state directory
//     lock (package instance) is the real exclusion.
//   - Describe: unit state for `herald status` and `herald doctor`; works
//     unprivileged (systemd allows reading properties to every client).
//
// Which bus: $INVOCATION_ID set means we run under a service manager; with
// $MANAGERPID as well it is a user manager (user bus), else the system
// manager (system bus). The system bus is $DBUS_SYSTEM_BUS_ADDRESS or
// /run/dbus/system_bus_socket. The user bus is $DBUS_SESSION_BUS_ADDRESS,
// else $XDG_RUNTIME_DIR/bus, else /run/user/<uid>/bus, dialled directly:
// never an autolaunch (dbus-launch), which a daemon must not trigger.
//
// Every call is bounded by its context (DefaultTimeout if it has no
// deadline), and every connection is closed before returning. Only point
// queries are used: go-systemd v22.7.0's SubscribeUnits can deadlock when
// its context is cancelled. Property values are read with Variant.Value(),
// never String() (which returns GVariant text such as "\"running\"").
//
// Package unitstatetest provides a private dbus-daemon with a fake systemd
// for tests.
package unitstate
