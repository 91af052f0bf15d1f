// SPDX-License-Identifier: Apache-2.0

// Package unitstatetest runs a private dbus-daemon and a fake systemd
// manager (org.freedesktop.systemd1, org.freedesktop.systemd1(5):
// https://www.freedesktop.org/software/systemd/man/latest/org.freedesktop.systemd1.html)
// on it, so code that asks systemd about units over D-Bus can be tested
// without systemd. Point DBUS_SYSTEM_BUS_ADDRESS or DBUS_SESSION_BUS_ADDRESS
// at Bus.Address().
//
// The fake implements what herald uses: Manager.ListUnitsByPatterns and
// org.freedesktop.DBus.Properties Get/GetAll on unit objects for the
// org.freedesktop.systemd1.Unit and .Service interfaces. Like systemd it
// answers for any unit path (an unknown unit is LoadState=not-found), and
// …/unit/self resolves to the unit set with SetSelf.
//
// Tests skip (one line) when dbus-daemon is not installed.
package unitstatetest
