// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDoReturnsStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("body"))
	}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := Do(srv.Client(), req)
	if err != nil || code != http.StatusTeapot {
		t.Fatalf("Do: %d, %v; want 418", code, err)
	}
	srv.Close()
	req, _ = http.NewRequest(http.MethodPost, srv.URL, nil)
	if _, err := Do(nil, req); err == nil {
		t.Fatal("Do to a closed server: no error")
	}
}
