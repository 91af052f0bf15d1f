// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"strconv"
	"testing"
)

func TestUploads(t *testing.T) {
	var u Uploads
	if _, ok := u.Get("k", "c"); ok {
		t.Fatal("empty Uploads found something")
	}
	u.Put("k", "c", "f1")
	if ref, ok := u.Get("k", "c"); !ok || ref != "f1" {
		t.Fatalf("Get = %q, %v", ref, ok)
	}
	if _, ok := u.Get("k", "other chat"); ok {
		t.Fatal("an upload of another chat was returned")
	}
	u.Put("", "c", "f2")
	if _, ok := u.Get("", "c"); ok {
		t.Fatal("an empty key was remembered")
	}
	u.Forget("k")
	if _, ok := u.Get("k", "c"); ok {
		t.Fatal("forgotten upload returned")
	}
	// Bounded: the oldest go first.
	for i := range maxUploadsKept + 1 {
		u.Put(strconv.Itoa(i), "c", "f")
	}
	if _, ok := u.Get("0", "c"); ok {
		t.Fatal("the oldest upload was kept past the bound")
	}
	if _, ok := u.Get(strconv.Itoa(maxUploadsKept), "c"); !ok || len(u.refs) != maxUploadsKept || len(u.order) != maxUploadsKept {
		t.Fatalf("%d uploads, %d keys in order", len(u.refs), len(u.order))
	}
	// Put again under a kept key does not grow the order.
	u.Put("1", "c", "g")
	if len(u.order) != maxUploadsKept {
		t.Fatalf("%d keys in order", len(u.order))
	}
}
