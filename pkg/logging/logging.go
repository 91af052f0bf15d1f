// SPDX-License-Identifier: Apache-2.0

package logging

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// Formats accepted by New.
const (
	FormatAuto    = "auto"
	FormatText    = "text"
	FormatJSON    = "json"
	FormatJournal = "journal"
)

// New returns a logger at level (trace, debug, info, warn, error) writing
// to stderr (nil: os.Stderr) in format:
//
//   - "auto": "journal" if stderr is the journal stream, else "text".
//   - "text", "json": formatted lines on stderr. When stderr is the journal
//     stream each line starts with a <N> priority prefix (sd-daemon(3)) so
//     journald still records the priority, and timestamps are left to the
//     journal.
//   - "journal": native journal entries; the logger's own output is
//     discarded so nothing is logged twice. An entry the journal does not
//     accept is written to stderr as text instead.
//
// Whether stderr is the journal stream is decided once, here.
func New(level, format string, stderr *os.File) (*logrus.Logger, error) {
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: want trace, debug, info, warn or error", level)
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	journalStream := IsJournalStream(stderr)

	log := logrus.New()
	log.SetLevel(lvl)
	log.Out = stderr
	if format == FormatAuto {
		format = FormatText
		if journalStream {
			format = FormatJournal
		}
	}
	switch format {
	case FormatText:
		log.Formatter = lineFormatter(&logrus.TextFormatter{}, journalStream)
	case FormatJSON:
		log.Formatter = lineFormatter(&logrus.JSONFormatter{}, journalStream)
	case FormatJournal:
		log.Out = io.Discard
		log.Formatter = discardFormatter{}
		log.AddHook(newJournalHook(stderr, lineFormatter(&logrus.TextFormatter{}, journalStream)))
	default:
		return nil, fmt.Errorf("logging: format %q: want auto, text, json or journal", format)
	}
	return log, nil
}

// lineFormatter configures f for stderr and, if stderr is the journal
// stream, prefixes lines with their syslog priority.
func lineFormatter(f logrus.Formatter, journalStream bool) logrus.Formatter {
	switch tf := f.(type) {
	case *logrus.TextFormatter:
		tf.FullTimestamp = true
		tf.DisableTimestamp = journalStream
		tf.DisableColors = journalStream
	case *logrus.JSONFormatter:
		tf.DisableTimestamp = journalStream
	}
	if journalStream {
		return priorityPrefix{f}
	}
	return f
}

// priorityPrefix prepends "<N>" (N = journal priority) to a formatted
// entry; journald strips it and records the priority (SyslogLevelPrefix=).
type priorityPrefix struct{ inner logrus.Formatter }

func (p priorityPrefix) Format(e *logrus.Entry) ([]byte, error) {
	b, err := p.inner.Format(e)
	if err != nil {
		return nil, err
	}
	return append([]byte(fmt.Sprintf("<%d>", Priority(e.Level))), b...), nil
}

// discardFormatter skips formatting when output goes to the journal hook.
type discardFormatter struct{}

func (discardFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

// IsJournalStream reports whether f is the stream systemd connected to the
// journal, by comparing $JOURNAL_STREAM ("<dev>:<ino>") with fstat(f). It
// is go-systemd's journal.StderrIsJournalStream applied to the file herald
// actually logs to.
func IsJournalStream(f *os.File) bool {
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" || f == nil {
		return false
	}
	devS, inoS, ok := strings.Cut(want, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devS, 10, 64)
	ino, err2 := strconv.ParseUint(inoS, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}
