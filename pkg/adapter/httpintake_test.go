// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/message"
)

func TestLogLimiter(t *testing.T) {
	var l LogLimiter
	t0 := time.Unix(1000, 0)
	if ok, n := l.Allow(t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 3 {
		if ok, _ := l.Allow(t0.Add(100 * time.Millisecond)); ok {
			t.Fatal("a second line within a second was allowed")
		}
	}
	if ok, n := l.Allow(t0.Add(time.Second)); !ok || n != 3 {
		t.Fatalf("after a second: %v, %d suppressed; want true, 3", ok, n)
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		body   string
		length int64
		status int
	}{
		{"hello", 5, 0},
		{"hello", -1, 0},
		{strings.Repeat("x", 11), 11, http.StatusRequestEntityTooLarge},
		{strings.Repeat("x", 11), -1, http.StatusRequestEntityTooLarge},
		{"hel", 5, http.StatusBadRequest},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		r.ContentLength = tc.length
		body, err := ReadBody(httptest.NewRecorder(), r, 10, time.Now(), time.Second)
		status := 0
		var be *BodyError
		if errors.As(err, &be) {
			status = be.Status
			if want := map[int]string{413: RejectTooLarge, 400: RejectReadError}[status]; be.Reason != want {
				t.Errorf("%q: reason %q, want %q", tc.body, be.Reason, want)
			}
		}
		if status != tc.status || (status == 0) != (err == nil) || (status == 0 && string(body) != tc.body) {
			t.Errorf("%q (length %d): %q %d %v, want status %d", tc.body, tc.length, body, status, err, tc.status)
		}
	}
}

func TestValidPath(t *testing.T) {
	for _, p := range []string{"/wecom/wecom", "/a", "/a-b/c_d.e"} {
		if err := ValidPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "/", "a/b", "/a/", "//a", "/a/./b", "/a/..", "/{x}", "/a b", "/a?b", "/a%2f"} {
		if err := ValidPath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

type countMetrics struct{ rejected map[string]int }

func (m *countMetrics) Reconnect()             {}
func (m *countMetrics) Rejected(reason string) { m.rejected[reason]++ }

func TestRefuserCountsEveryOneLogsOnePerSecond(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	m := &countMetrics{rejected: map[string]int{}}
	f := Refuser{Log: logrus.NewEntry(log), Metrics: m, Prefix: "x"}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		rec := httptest.NewRecorder()
		f.Refuse(rec, httptest.NewRequest(http.MethodPost, "/x", nil), t0.Add(time.Duration(i)*time.Millisecond),
			http.StatusUnauthorized, "bad_signature", "invalid signature", logrus.WarnLevel)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "invalid signature") {
			t.Fatalf("answer %d %q", rec.Code, rec.Body)
		}
	}
	if m.rejected["bad_signature"] != 3 || len(hook.Entries) != 1 || hook.Entries[0].Message != "x: request rejected: invalid signature" {
		t.Errorf("counted %v, logged %d", m.rejected, len(hook.Entries))
	}
}

type nopInbox struct{}

func (nopInbox) Deliver(context.Context, *message.Inbound) error { return nil }

// TestIntake: closed answers 503 with Retry-After, open hands out the
// inbox, and opening after Stop leaves it closed.
func TestIntake(t *testing.T) {
	var in Intake
	rec := httptest.NewRecorder()
	if in.Inbox(rec) != nil || rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("closed: %d %v", rec.Code, rec.Header())
	}
	life := NewLife("x", func(Status) {})
	if !in.Open(life, nopInbox{}) || in.Inbox(httptest.NewRecorder()) == nil {
		t.Fatal("open intake has no inbox")
	}
	in.Close()
	if in.Inbox(httptest.NewRecorder()) != nil {
		t.Fatal("closed intake has an inbox")
	}
	if err := life.Stop(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if in.Open(life, nopInbox{}) || in.Inbox(httptest.NewRecorder()) != nil {
		t.Fatal("intake opened after Stop")
	}
}

type errInbox struct{ err error }

func (i errInbox) Deliver(context.Context, *message.Inbound) error { return i.err }

// TestRefuserStore: stored and refused-for-good are acknowledged (the
// latter counted and logged); stopping answers 503 with Retry-After and a
// failed store 500, and neither is acknowledged.
func TestRefuserStore(t *testing.T) {
	for _, tc := range []struct {
		err    error
		ack    bool
		status int
		count  int
	}{
		{nil, true, http.StatusOK, 0},
		{message.ErrInvalid, true, http.StatusOK, 1},
		{ErrStopping, false, http.StatusServiceUnavailable, 0},
		{errors.New("disk full"), false, http.StatusInternalServerError, 0},
	} {
		log, hook := logtest.NewNullLogger()
		m := &countMetrics{rejected: map[string]int{}}
		f := Refuser{Log: logrus.NewEntry(log), Metrics: m, Prefix: "x"}
		rec := httptest.NewRecorder()
		ack := f.Store(context.Background(), rec, errInbox{tc.err}, &message.Inbound{EventID: "e1"}, "malformed")
		if ack != tc.ack || rec.Code != tc.status || m.rejected["malformed"] != tc.count {
			t.Errorf("%v: ack %v, status %d, counted %d; want %v %d %d", tc.err, ack, rec.Code, m.rejected["malformed"], tc.ack, tc.status, tc.count)
		}
		if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") != "1" {
			t.Errorf("stopping: Retry-After %q", rec.Header().Get("Retry-After"))
		}
		if logged := len(hook.Entries) > 0; logged != (tc.err != nil && tc.err != ErrStopping) {
			t.Errorf("%v: logged %d entries", tc.err, len(hook.Entries))
		}
	}
}
