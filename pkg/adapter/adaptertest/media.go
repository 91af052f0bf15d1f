// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// MediaFile writes data to a file in a temporary directory, or makes a
// sparse file of size bytes when data is nil, and returns the
// OutboundMedia the core would hand to an adapter for it.
func MediaFile(t testing.TB, kind message.MediaKind, name, mime string, data []byte, size int64) *message.OutboundMedia {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if data != nil {
		size = int64(len(data))
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if data == nil {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
	return &message.OutboundMedia{Kind: kind, Name: name, MIME: mime, Size: size, Path: path, Source: "https://example.org/" + name}
}

// OnHost returns ref, an absolute URL, moved to the host of base: for a
// Fake's Media whose attachment carries its own address.
func OnHost(t testing.TB, ref, base string) string {
	t.Helper()
	u, err := url.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String()
}

// ApprovalButtons returns the Approve and Deny buttons the core attaches
// to an approval prompt, with fixed data, for tests of adapters that
// implement adapter.ButtonSender.
func ApprovalButtons() []message.Button {
	return []message.Button{
		{Label: "Approve", Data: "hr1:a:xyz", Style: "primary"},
		{Label: "Deny", Data: "hr1:d:xyz", Style: "danger"},
	}
}

// ReadEndsOnCancel reads one byte of body (a download that trickles),
// calls cancel (the download's context ends) and fails the test unless
// reading the rest ends with an error within timeout.
func ReadEndsOnCancel(t testing.TB, body io.Reader, cancel func(), timeout time.Duration) {
	t.Helper()
	if _, err := io.ReadFull(body, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(body); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read ended without error")
		}
	case <-time.After(timeout):
		t.Fatal("read did not end after the context was cancelled")
	}
}

// FetchEndsWithContext runs fetch (a FetchMedia and the read of its body)
// with a context that ends after a moment, against a fake dripping the body
// one byte an hour, and fails unless it returns the context's deadline
// error in time.
func FetchEndsWithContext(t testing.TB, fetch func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fetch(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow download: err %v, want the context's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the download did not end with its context")
	}
}
