// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetNS opens a TCP listener inside the network namespace of pid
// (the sandbox's PID 1), so that services in the sandbox reach the bench's
// receiver at the sandbox's 127.0.0.1. pkg/testsupport/systemdbox only dials into the
// namespace; a listener needs the same thread switch (setns(2) on a locked
// thread, then back). The socket stays in the namespace it was created in;
// accepting from any thread afterwards is fine. If switching back fails the
// thread stays locked and dies with its goroutine.
func listenInNetNS(pid int, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("bench: listen %s in the sandbox: %w", addr, r.err)
	}
	return r.ln, nil
}
