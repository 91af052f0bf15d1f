// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"fmt"
	"testing"
)

func TestProgress(t *testing.T) {
	var p Progress
	p.Set("", MediaStep{MediaID: "x"})
	if p.Len() != 0 {
		t.Fatal("a part without a key was recorded")
	}
	p.Set("a", MediaStep{MediaID: "m1"})
	p.Set("a", MediaStep{MediaID: "m1", Shown: &SendResult{MessageID: "42"}})
	if s, _ := p.Get("a"); s.MediaID != "m1" || s.Shown == nil || s.Shown.MessageID != "42" || p.Len() != 1 {
		t.Fatalf("step %+v, %d parts", s, p.Len())
	}
	p.Forget("a")
	if s, ok := p.Get("a"); ok || s.MediaID != "" || p.Len() != 0 {
		t.Fatalf("forgotten step %+v", s)
	}
	for i := range maxRemembered + 10 {
		p.Set(fmt.Sprint(i), MediaStep{MediaID: fmt.Sprint(i)})
	}
	if p.Len() != maxRemembered || has(&p, "0") || !has(&p, fmt.Sprint(maxRemembered+9)) {
		t.Fatalf("%d parts kept; the oldest must go first", p.Len())
	}
}

func has[V any](r *Remembered[V], key string) bool { _, ok := r.Get(key); return ok }
