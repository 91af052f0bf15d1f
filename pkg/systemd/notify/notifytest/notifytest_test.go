// SPDX-License-Identifier: Apache-2.0

package notifytest

import (
	"net"
	"os"
	"testing"
	"time"
)

func send(t *testing.T, msg string) {
	t.Helper()
	c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestSocketRecordsInOrder(t *testing.T) {
	s := Listen(t)
	if got := os.Getenv("NOTIFY_SOCKET"); got != s.Path() {
		t.Fatalf("NOTIFY_SOCKET = %q, want %q", got, s.Path())
	}
	send(t, "A=1")
	send(t, "B=2\nC=3")
	send(t, "D=4")
	if got := s.Next(t, 5*time.Second); got != "A=1" {
		t.Errorf("Next = %q, want A=1", got)
	}
	if got := s.WaitFor(t, "D=", 5*time.Second); got != "D=4" {
		t.Errorf("WaitFor(D=) = %q, want D=4", got)
	}
	want := []string{"A=1", "B=2\nC=3", "D=4"}
	got := s.All()
	if len(got) != len(want) {
		t.Fatalf("All = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("All[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if n := s.Count("="); n != 3 {
		t.Errorf("Count(=) = %d, want 3", n)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	s := Listen(t)
	send(t, "A=1")
	// await is the non-fatal core of WaitFor.
	if m, ok := s.await(func(m string) bool { return m == "never" }, 50*time.Millisecond); ok {
		t.Fatalf("await matched %q", m)
	}
	s.Skip()
	send(t, "B=2")
	if got := s.Next(t, 5*time.Second); got != "B=2" {
		t.Errorf("Next after Skip = %q, want B=2", got)
	}
}

func TestLongTestNameGetsShortPath(t *testing.T) {
	t.Run("a_very_long_subtest_name_that_pushes_the_temporary_directory_path_beyond_the_sun_path_limit_of_unix_sockets", func(t *testing.T) {
		s := Listen(t)
		if len(s.Path()) > maxSockPath {
			t.Fatalf("path %q longer than %d", s.Path(), maxSockPath)
		}
		send(t, "X=1")
		s.WaitFor(t, "X=1", 5*time.Second)
	})
}
