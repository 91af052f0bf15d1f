// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
