// SPDX-License-Identifier: Apache-2.0

// Package logging builds herald's logrus logger and sends entries to the
// systemd journal natively when herald runs under systemd
// (systemd.journal-fields(7):
// https://www.freedesktop.org/software/systemd/man/latest/systemd.journal-fields.html,
// native protocol: https://systemd.io/JOURNAL_NATIVE_PROTOCOL/).
//
// Format "auto" uses the journal only when stderr IS the journal stream:
// $JOURNAL_STREAM names the device and inode of the stream systemd connected
// to stderr, and only a match with fstat(2) of stderr proves it (the
// variable is inherited by children whose stderr was redirected,
// systemd.exec(5)). Otherwise herald writes text to stderr.
//
// Native entries keep logrus fields as journal fields (COMPONENT=,
// PLATFORM=, MESSAGE_ID=, …), so `journalctl -u herald COMPONENT=dispatch`
// and `journalctl MESSAGE_ID=…` work. The hook is written here rather than
// imported: wercker/journalhook maps Trace to priority 0 (EMERG, broadcast
// to every terminal) and imports the pre-module go-systemd; ssgreg/journalhook
// is unmaintained. Field names are sanitised because journald silently drops
// fields whose names start with a digit or an underscore or exceed 64
// characters, and go-systemd sends them anyway.
//
// Lifecycle events carry a MESSAGE_ID from Messages (use Event), so that
// operators can find them and a journal catalog (journalctl -x) can explain
// them.
package logging
