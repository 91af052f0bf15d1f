// SPDX-License-Identifier: Apache-2.0

package logging

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

// SyslogIdentifier is the SYSLOG_IDENTIFIER of every native entry.
const SyslogIdentifier = "herald"

// Priority maps a logrus level to a journal priority. Fatal and panic map
// to 2 (crit), never 0 (emerg): journald broadcasts emerg to all terminals.
func Priority(l logrus.Level) journal.Priority {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return journal.PriCrit
	case logrus.ErrorLevel:
		return journal.PriErr
	case logrus.WarnLevel:
		return journal.PriWarning
	case logrus.InfoLevel:
		return journal.PriInfo
	default: // debug, trace
		return journal.PriDebug
	}
}

// FieldName turns a logrus field key into a journal field name matching
// ^[A-Z][A-Z0-9_]{0,63}$: upper-cased, other characters replaced by "_",
// leading underscores dropped (they mark trusted fields), "F_" before a
// leading digit, truncated to 64 characters. "" means the key cannot be
// used.
func FieldName(key string) string {
	b := make([]byte, 0, len(key))
	for _, r := range strings.ToUpper(key) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	name := strings.TrimLeft(string(b), "_")
	if name == "" {
		return ""
	}
	if name[0] >= '0' && name[0] <= '9' {
		name = "F_" + name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// JournalFields builds the fields of e's native entry, apart from MESSAGE
// and PRIORITY, which journal.Send adds: every logrus field under its
// FieldName ("component" → COMPONENT, "message_id" → MESSAGE_ID; a field
// named like MESSAGE or PRIORITY becomes F_MESSAGE, F_PRIORITY), CODE_FILE,
// CODE_LINE and CODE_FUNC when e has a caller, and SYSLOG_IDENTIFIER.
func JournalFields(e *logrus.Entry) map[string]string {
	vars := make(map[string]string, len(e.Data)+4)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when two keys sanitise to one name
	for _, k := range keys {
		name := FieldName(k)
		switch name {
		case "":
			continue
		case "MESSAGE", "PRIORITY":
			name = "F_" + name
		}
		vars[name] = fmt.Sprint(e.Data[k])
	}
	if e.Caller != nil { // set by logrus only with ReportCaller (or explicitly)
		vars["CODE_FILE"] = e.Caller.File
		vars["CODE_LINE"] = strconv.Itoa(e.Caller.Line)
		vars["CODE_FUNC"] = e.Caller.Function
	}
	vars["SYSLOG_IDENTIFIER"] = SyslogIdentifier
	return vars
}

// journalMessage is the MESSAGE of e's native entry: its message and, when
// e carries an error (WithError), ": " and the error, unless the message
// already says it. journalctl shows MESSAGE and hides the other fields
// unless asked (-o verbose), and the cause is what an operator needs first;
// the ERROR field keeps the error on its own for filters and the catalog.
func journalMessage(e *logrus.Entry) string {
	v, ok := e.Data[logrus.ErrorKey]
	if !ok || v == nil {
		return e.Message
	}
	cause := fmt.Sprint(v)
	if cause == "" || strings.Contains(e.Message, cause) {
		return e.Message
	}
	return e.Message + ": " + cause
}

// invocationID returns v if it is a systemd invocation id (32 lowercase hex
// digits), else "".
func invocationID(v string) string {
	if len(v) != 32 {
		return ""
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return v
}

// journalHook sends every entry to the journal; an entry the journal does
// not take is written to the fallback writer as text.
type journalHook struct {
	send func(message string, priority journal.Priority, vars map[string]string) error
	// invocation is $INVOCATION_ID, which systemd sets for every unit it
	// starts. Each entry carries it as INVOCATION_ID, the field systemd
	// puts on its own messages about the unit, so `journalctl
	// INVOCATION_ID=<id>` finds one run's entries even when journald could
	// not attribute the last ones to the unit: it reads the cgroup of an
	// entry's sender late, and a process that has already exited leaves
	// them without _SYSTEMD_UNIT and _SYSTEMD_INVOCATION_ID.
	invocation string

	mu       sync.Mutex // serialises fallback writes
	fallback io.Writer
	format   logrus.Formatter
}

func newJournalHook(fallback io.Writer, format logrus.Formatter) *journalHook {
	return &journalHook{send: journal.Send, fallback: fallback, format: format, invocation: invocationID(os.Getenv("INVOCATION_ID"))}
}

func (h *journalHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire never returns an error: logrus would print "Failed to fire hook" and
// lose the entry; the fallback keeps it.
func (h *journalHook) Fire(e *logrus.Entry) error {
	vars := JournalFields(e)
	if h.invocation != "" {
		vars["INVOCATION_ID"] = h.invocation
	}
	if err := h.send(journalMessage(e), Priority(e.Level), vars); err == nil {
		return nil
	}
	b, err := h.format.Format(e)
	if err != nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, _ = h.fallback.Write(b)
	return nil
}

// Interface guards
var _ logrus.Hook = (*journalHook)(nil)
