// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzRequestedWait feeds arbitrary ?wait= queries and Prefer headers to
// the parsing of how long a request waits for its reply. Invariants: no
// panic; either an error (answered 400) or a wait in [0, maxWait], however
// large the number of seconds asked for.
func FuzzRequestedWait(f *testing.F) {
	for _, s := range []struct{ query, prefer string }{
		{"", ""},
		{"wait=10s", ""},
		{"wait=30", ""},
		{"wait=0", "wait=5"},
		{"wait=-1s", ""},
		{"wait=abc", ""},
		{"wait=99999h", ""},
		{"wait=9300000000", ""},
		{"wait=1e3", ""},
		{"wait=%ZZ", ""},
		{"", "wait=5"},
		{"", `respond-async, WAIT="7"`},
		{"", "wait=-5"},
		{"", "wait"},
		{"", "wait=5, wait=6"},
	} {
		f.Add(s.query, s.prefer)
	}
	f.Fuzz(func(t *testing.T, query, prefer string) {
		r := &http.Request{URL: &url.URL{RawQuery: query}, Header: http.Header{}}
		if prefer != "" {
			r.Header.Set("Prefer", prefer)
		}
		d, err := requestedWait(r)
		if err == nil && (d < 0 || d > maxWait) {
			t.Fatalf("wait %v from ?%s, Prefer: %s", d, query, prefer)
		}
	})
}

// FuzzParseRetryAfter: a Retry-After a receiver sends is either refused or
// read as a delay in [0, MaxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{
		"0", "120", " 7 ", "-1", "1.5", "18446744073709551616", "9300000000",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 2094 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "soon", "",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if ok && (d < 0 || d > MaxRetryAfter) {
			t.Fatalf("Retry-After %q gave %v", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("Retry-After %q refused with %v", v, d)
		}
	})
}
