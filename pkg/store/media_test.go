// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

func TestMediaFetchDurableAndPruned(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(ctx, path, Options{SyncFull: true})
	if err != nil {
		t.Fatal(err)
	}
	in := msg("e1", "c", "look")
	in.Attachments = []message.Attachment{{Kind: message.MediaImage, Ref: "file-1", Name: "a.png", MIME: "image/png", Size: 10}}
	id, _, err := s.AddInbound(ctx, "k", in, Pending)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordMediaFetch(ctx, id, MediaFetch{Index: 0, SHA256: "aa", Size: 10, MIME: "image/png", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{SyncFull: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pend, err := s.Pending(ctx)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending %v %v", pend, err)
	}
	if a := pend[0].Msg.Attachments; len(a) != 1 || a[0].Ref != "file-1" || a[0].Name != "a.png" {
		t.Fatalf("attachments not in the stored message: %+v", a)
	}
	f, err := s.MediaFetches(ctx, id)
	if err != nil || f[0].SHA256 != "aa" || f[0].Size != 10 {
		t.Fatalf("fetches after reopen %+v %v", f, err)
	}
	ref, err := s.ReferencedMedia(ctx)
	if err != nil || !ref["aa"] {
		t.Fatalf("referenced %v %v", ref, err)
	}
	// A failure is recorded in place of the first outcome.
	if err := s.RecordMediaFetch(ctx, id, MediaFetch{Index: 0, Error: "too large", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.MediaFetches(ctx, id); f[0].Error != "too large" || f[0].SHA256 != "" {
		t.Fatalf("replaced %+v", f)
	}
	if err := s.RecordMediaFetch(ctx, id, MediaFetch{Index: 0, SHA256: "aa", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// An undelivered reply's file is referenced too.
	r := in.ReplyTo()
	r.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, 0)
	r.Media = &message.OutboundMedia{Kind: message.MediaFile, Source: "https://x/y", Name: "y.pdf", SHA256: "bb", Size: 3}
	recs, err := s.Finish(ctx, id, Done, "k", 0, []message.Outbound{r}, nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("finish %v %v", recs, err)
	}
	if ref, _ := s.ReferencedMedia(ctx); !ref["aa"] || !ref["bb"] {
		t.Fatalf("referenced with a pending reply %v", ref)
	}
	if err := s.Delivered(ctx, recs[0].ID, 1, "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.MediaFetches(ctx, id); len(f) != 0 {
		t.Fatalf("fetch records outlived their message: %+v", f)
	}
	if ref, _ := s.ReferencedMedia(ctx); len(ref) != 0 {
		t.Fatalf("referenced after prune %v", ref)
	}
}
