// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"context"
	"errors"
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
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the headers of a slow body did not come first: %v", err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.DeadlineExceeded) || resp.ContentLength != 3 {
		t.Fatalf("slow body: %v, length %d", err, resp.ContentLength)
	}
}
