// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"net/http"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// The wait of a 429: retry_after_ms, or the Retry-After header (seconds)
// when the homeserver sends both, clamped to [0, MaxRetryAfter].
func TestRetryAfter(t *testing.T) {
	env, _, _ := adaptertest.Env(t, "mx")
	c := &client{log: env.Log}
	for _, tc := range []struct {
		header string
		body   string
		want   time.Duration
	}{
		{"", `{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":1500}`, 1500 * time.Millisecond},
		{"2", `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1500}`, 2 * time.Second},
		{"Wed, 21 Oct 2015 07:28:00 GMT", `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":700}`, 700 * time.Millisecond},
		{"", `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":-5}`, 0},
		{"", `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1e300}`, adapter.MaxRetryAfter},
		{"", `{"errcode":"M_LIMIT_EXCEEDED"}`, 0},
		{"", `not json`, 0},
	} {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("Retry-After", tc.header)
		}
		e := c.apiError("/sync", resp, []byte(tc.body))
		if e.RetryAfter != tc.want || e.Status != 429 {
			t.Errorf("Retry-After %q, body %s: wait %v, want %v", tc.header, tc.body, e.RetryAfter, tc.want)
		}
	}
}

func TestUnauthorizedCodes(t *testing.T) {
	for _, tc := range []struct {
		e    apiError
		want bool
	}{
		{apiError{Status: 401, Errcode: "M_UNKNOWN_TOKEN"}, true},
		{apiError{Status: 401, Errcode: "M_MISSING_TOKEN"}, true},
		{apiError{Status: 401}, true},
		{apiError{Status: 403, Errcode: "M_FORBIDDEN"}, false},
		{apiError{Status: 429, Errcode: "M_LIMIT_EXCEEDED"}, false},
	} {
		if got := tc.e.unauthorized(); got != tc.want {
			t.Errorf("%v: unauthorized %v, want %v", &tc.e, got, tc.want)
		}
	}
}
