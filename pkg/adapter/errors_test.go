// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTrackWritten: a request refused before it is written is not
// written; one the server received is.
func TestTrackWritten(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	ctx, written := TrackWritten(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !written() {
		t.Error("an answered request was not written")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, written = TrackWritten(context.Background())
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a closed port answered")
	}
	if written() {
		t.Error("a refused connection counts as written")
	}
}

func TestTooLargeIsNotRetried(t *testing.T) {
	if Retryable(fmt.Errorf("telegram: sendDocument: %w: 413", ErrTooLarge)) {
		t.Fatal("a file over a size limit is retried")
	}
}
