// SPDX-License-Identifier: Apache-2.0

package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

func TestPriority(t *testing.T) {
	tests := []struct {
		level logrus.Level
		want  journal.Priority
	}{
		{logrus.TraceLevel, 7},
		{logrus.DebugLevel, 7},
		{logrus.InfoLevel, 6},
		{logrus.WarnLevel, 4},
		{logrus.ErrorLevel, 3},
		{logrus.FatalLevel, 2},
		{logrus.PanicLevel, 2},
	}
	for _, tt := range tests {
		if got := Priority(tt.level); got != tt.want {
			t.Errorf("Priority(%v) = %d, want %d", tt.level, got, tt.want)
		}
	}
	for _, l := range logrus.AllLevels {
		if Priority(l) == journal.PriEmerg {
			t.Errorf("Priority(%v) = 0 (emerg): journald would broadcast it", l)
		}
	}
}

var validName = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

func TestFieldName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"component", "COMPONENT"},
		{"platform", "PLATFORM"},
		{"message_id", "MESSAGE_ID"},
		{"error", "ERROR"},
		{"http.status", "HTTP_STATUS"},
		{"turn-id", "TURN_ID"},
		{"Chat ID", "CHAT_ID"},
		{"_SYSTEMD_UNIT", "SYSTEMD_UNIT"},
		{"__x", "X"},
		{"2fa", "F_2FA"},
		{"_9", "F_9"},
		{"émoji✓", "MOJI_"},
		{"", ""},
		{"___", ""},
		{"-", ""},
		{strings.Repeat("a", 70), strings.Repeat("A", 64)},
		{"1" + strings.Repeat("b", 70), "F_1" + strings.Repeat("B", 61)},
	}
	for _, tt := range tests {
		got := FieldName(tt.in)
		if got != tt.want {
			t.Errorf("FieldName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != "" && !validName.MatchString(got) {
			t.Errorf("FieldName(%q) = %q is not a valid journal field name", tt.in, got)
		}
	}
}

func TestJournalFields(t *testing.T) {
	log := logrus.New()
	e := logrus.NewEntry(log).WithFields(logrus.Fields{
		"component":  "adapter/telegram",
		"platform":   "telegram",
		"message_id": MsgReady,
		"attempt":    3,
		"error":      errors.New("boom"),
		"message":    "user field",
		"priority":   "high",
		"_private":   "x",
		"9lives":     true,
		"":           "dropped",
	})
	e.Caller = &runtime.Frame{File: "/src/herald/daemon.go", Line: 42, Function: "github.com/heraldgw/herald/pkg/herald.(*Daemon).Run"}
	log.ReportCaller = true
	got := JournalFields(e)
	want := map[string]string{
		"COMPONENT":         "adapter/telegram",
		"PLATFORM":          "telegram",
		"MESSAGE_ID":        MsgReady,
		"ATTEMPT":           "3",
		"ERROR":             "boom",
		"F_MESSAGE":         "user field",
		"F_PRIORITY":        "high",
		"PRIVATE":           "x",
		"F_9LIVES":          "true",
		"CODE_FILE":         "/src/herald/daemon.go",
		"CODE_LINE":         "42",
		"CODE_FUNC":         "github.com/heraldgw/herald/pkg/herald.(*Daemon).Run",
		"SYSLOG_IDENTIFIER": "herald",
	}
	if !maps.Equal(got, want) {
		t.Errorf("JournalFields =\n%v\nwant\n%v", got, want)
	}
	for k := range got {
		if !validName.MatchString(k) {
			t.Errorf("invalid field name %q", k)
		}
	}

	// Without ReportCaller there are no CODE_* fields, and ours win over a
	// user field of the same name.
	log.ReportCaller = false
	got = JournalFields(logrus.NewEntry(log).WithField("syslog_identifier", "spoof"))
	if _, ok := got["CODE_FILE"]; ok {
		t.Error("CODE_FILE without a caller")
	}
	if got["SYSLOG_IDENTIFIER"] != "herald" {
		t.Errorf("SYSLOG_IDENTIFIER = %q", got["SYSLOG_IDENTIFIER"])
	}
}

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

// fakeJournal records what the hook sends; fail makes sends fail.
type fakeJournal struct {
	mu   sync.Mutex
	sent []sent
	fail error
}

func (f *fakeJournal) send(msg string, pri journal.Priority, vars map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, sent{msg, pri, vars})
	return nil
}

// syncBuffer is a bytes.Buffer safe for the concurrent test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func journalLogger(t *testing.T, fj *fakeJournal, fallback io.Writer) *logrus.Logger {
	t.Helper()
	log := logrus.New()
	log.Out = io.Discard
	log.Formatter = discardFormatter{}
	log.SetLevel(logrus.TraceLevel)
	h := newJournalHook(fallback, lineFormatter(&logrus.TextFormatter{}, true))
	h.send = fj.send
	log.AddHook(h)
	return log
}

func TestHookSends(t *testing.T) {
	fj := &fakeJournal{}
	var fallback syncBuffer
	log := journalLogger(t, fj, &fallback)
	Event(log.WithField("component", "herald"), MsgStarting).Info("starting")
	log.Trace("tick")
	log.WithField("platform", "slack").Warn("reconnecting")
	if len(fj.sent) != 3 {
		t.Fatalf("sent %d entries, want 3", len(fj.sent))
	}
	first := fj.sent[0]
	if first.msg != "starting" || first.pri != 6 || first.vars["MESSAGE_ID"] != MsgStarting ||
		first.vars["COMPONENT"] != "herald" || first.vars["SYSLOG_IDENTIFIER"] != "herald" {
		t.Errorf("first entry %+v", first)
	}
	if fj.sent[1].pri != 7 || fj.sent[2].pri != 4 || fj.sent[2].vars["PLATFORM"] != "slack" {
		t.Errorf("entries %+v", fj.sent[1:])
	}
	if fallback.String() != "" {
		t.Errorf("fallback written although the journal took everything: %q", fallback.String())
	}
}

// The cause of an error is in MESSAGE, which journalctl shows, not only in
// ERROR=, which it hides by default.
func TestHookPutsTheErrorInMessage(t *testing.T) {
	fj := &fakeJournal{}
	log := journalLogger(t, fj, io.Discard)
	cause := errors.New("store: commit: database or disk is full (13)")
	log.WithError(cause).Error("cannot record the end of a turn")
	log.WithError(cause).Error("store failed: " + cause.Error()) // already says it
	log.Warn("no error here")
	if len(fj.sent) != 3 {
		t.Fatalf("sent %d entries, want 3", len(fj.sent))
	}
	want := []string{
		"cannot record the end of a turn: store: commit: database or disk is full (13)",
		"store failed: store: commit: database or disk is full (13)",
		"no error here",
	}
	for i, w := range want {
		if fj.sent[i].msg != w {
			t.Errorf("MESSAGE %q, want %q", fj.sent[i].msg, w)
		}
	}
	if fj.sent[0].vars["ERROR"] != cause.Error() {
		t.Errorf("ERROR=%q, want the error on its own", fj.sent[0].vars["ERROR"])
	}
}

func TestHookFallsBackToStderr(t *testing.T) {
	fj := &fakeJournal{fail: syscall.ENOENT}
	var fallback syncBuffer
	log := journalLogger(t, fj, &fallback)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { log.WithField("n", i).Error("store failed") })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(fallback.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("fallback has %d lines, want 4: %q", len(lines), fallback.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "<3>") || !strings.Contains(l, `msg="store failed"`) {
			t.Errorf("fallback line %q, want <3>-prefixed text", l)
		}
	}
}

// journalStreamOf sets JOURNAL_STREAM to f's dev:ino, as systemd would for
// a service's stderr.
func journalStreamOf(t *testing.T, f *os.File) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
}

func tempStderr(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func output(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIsJournalStream(t *testing.T) {
	f := tempStderr(t)
	other := tempStderr(t)
	t.Setenv("JOURNAL_STREAM", "")
	if IsJournalStream(f) {
		t.Error("true without JOURNAL_STREAM")
	}
	journalStreamOf(t, f)
	if !IsJournalStream(f) {
		t.Error("false for the file JOURNAL_STREAM names")
	}
	if IsJournalStream(other) {
		t.Error("true for another file (JOURNAL_STREAM inherited, stderr redirected)")
	}
	for _, bad := range []string{"garbage", "1:", ":2", "1:2:3", "-1:2"} {
		t.Setenv("JOURNAL_STREAM", bad)
		if IsJournalStream(f) {
			t.Errorf("true for JOURNAL_STREAM=%q", bad)
		}
	}
}

func TestNewText(t *testing.T) {
	f := tempStderr(t)
	t.Setenv("JOURNAL_STREAM", "1:2") // set but not our stderr: text
	log, err := New("info", "auto", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Hooks) != 0 {
		t.Errorf("hooks installed for text output: %v", log.Hooks)
	}
	log.Debug("hidden")
	Event(log.WithField("component", "herald"), MsgReady).Info("ready")
	out := output(t, f)
	if strings.Contains(out, "hidden") || !strings.Contains(out, `msg=ready`) ||
		!strings.Contains(out, "message_id="+MsgReady) || !strings.Contains(out, "time=") || strings.HasPrefix(out, "<") {
		t.Errorf("text output %q", out)
	}
}

func TestNewTextOnJournalStream(t *testing.T) {
	f := tempStderr(t)
	journalStreamOf(t, f)
	log, err := New("debug", "text", f)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("careful")
	log.Debug("detail")
	out := output(t, f)
	if !strings.HasPrefix(out, "<4>level=warning msg=careful\n<7>level=debug msg=detail\n") {
		t.Errorf("text on the journal stream = %q, want <N> prefixes and no timestamps", out)
	}
}

func TestNewJSON(t *testing.T) {
	f := tempStderr(t)
	t.Setenv("JOURNAL_STREAM", "")
	log, err := New("info", "json", f)
	if err != nil {
		t.Fatal(err)
	}
	log.WithField("platform", "discord").Error("gateway closed")
	var m map[string]any
	if err := json.Unmarshal([]byte(output(t, f)), &m); err != nil {
		t.Fatalf("json output %q: %v", output(t, f), err)
	}
	if m["msg"] != "gateway closed" || m["platform"] != "discord" || m["level"] != "error" {
		t.Errorf("json entry %v", m)
	}
}

func journalSocketExists() bool {
	_, err := os.Stat("/run/systemd/journal/socket")
	return err == nil
}

func TestNewJournal(t *testing.T) {
	f := tempStderr(t)
	journalStreamOf(t, f)
	log, err := New("info", "auto", f)
	if err != nil {
		t.Fatal(err)
	}
	if log.Out != io.Discard {
		t.Error("journal mode: logger output not discarded (lines would be doubled)")
	}
	var hook *journalHook
	for _, h := range log.Hooks[logrus.InfoLevel] {
		if jh, ok := h.(*journalHook); ok {
			hook = jh
		}
	}
	if hook == nil {
		t.Fatal("journal mode: no journal hook")
	}
	log.WithField("component", "test").Info("hello journal " + strconv.Itoa(os.Getpid()))
	out := output(t, f)
	if journalSocketExists() {
		// End to end: journald took the entry, so nothing on stderr.
		if out != "" {
			t.Errorf("journald is running but the entry went to stderr: %q", out)
		}
		return
	}
	// No journald here: the entry must not be lost.
	if !strings.HasPrefix(out, "<6>level=info msg=\"hello journal") {
		t.Errorf("fallback output %q", out)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("loud", "auto", nil); err == nil || !strings.HasPrefix(err.Error(), "logging: level") {
		t.Errorf("bad level: %v", err)
	}
	if _, err := New("info", "xml", nil); err == nil || !strings.HasPrefix(err.Error(), "logging: format") {
		t.Errorf("bad format: %v", err)
	}
	for _, l := range []string{"trace", "debug", "info", "warn", "error"} {
		if _, err := New(l, "text", nil); err != nil {
			t.Errorf("level %q: %v", l, err)
		}
	}
}

func TestMessages(t *testing.T) {
	id := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seenID, seenName := map[string]bool{}, map[string]bool{}
	for _, m := range Messages {
		if !id.MatchString(m.ID) {
			t.Errorf("%s: ID %q is not 128-bit lowercase hex", m.Name, m.ID)
		}
		if seenID[m.ID] || seenName[m.Name] {
			t.Errorf("%s: duplicate ID or name", m.Name)
		}
		seenID[m.ID], seenName[m.Name] = true, true
		if m.Subject == "" || strings.ContainsAny(m.Subject, "\n") {
			t.Errorf("%s: subject %q must be one non-empty line", m.Name, m.Subject)
		}
	}

	// Every Msg* constant has a row with its value, and vice versa.
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "messages.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	ast.Inspect(file, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Msg") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					consts[name.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
		return true
	})
	if len(consts) != len(Messages) {
		t.Errorf("%d Msg constants, %d rows in Messages", len(consts), len(Messages))
	}
	for _, m := range Messages {
		if consts[m.Name] != m.ID {
			t.Errorf("row %s has ID %q, constant is %q", m.Name, m.ID, consts[m.Name])
		}
	}
}

func TestEvent(t *testing.T) {
	e := Event(logrus.NewEntry(logrus.New()), MsgStopped)
	if e.Data[FieldMessageID] != MsgStopped || FieldName(FieldMessageID) != "MESSAGE_ID" {
		t.Errorf("Event data %v", e.Data)
	}
}

func TestHookAddsInvocationID(t *testing.T) {
	fj := &fakeJournal{}
	log := logrus.New()
	log.Out = io.Discard
	h := newJournalHook(io.Discard, lineFormatter(&logrus.TextFormatter{}, true))
	h.send = fj.send
	h.invocation = invocationID("0123456789abcdef0123456789abcdef")
	log.AddHook(h)
	log.Info("stopped")
	if len(fj.sent) != 1 || fj.sent[0].vars["INVOCATION_ID"] != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("entries %+v", fj.sent)
	}
	for _, bad := range []string{"", "xyz", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef0"} {
		if got := invocationID(bad); got != "" {
			t.Errorf("invocationID(%q) = %q", bad, got)
		}
	}
}
