// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestServeBytes(t *testing.T) {
	var every time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeBytes(w, r, []byte("abc"), every, r.Context().Done())
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "abc" || resp.ContentLength != 3 {
		t.Fatalf("body %q, length %d", b, resp.ContentLength)
	}
	every = time.Hour
	if err := Stalls(srv.URL, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
