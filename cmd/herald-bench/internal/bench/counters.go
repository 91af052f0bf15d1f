// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Per-message write counters of the throughput measure, the same for herald
// and the durable relay:
//
//   - commits and SQL statements, as the subject counts them itself
//     (herald's /metrics on the admin socket: herald_store_commit_batch_size
//     and herald_store_statements_total; the durable relay's GET /counters);
//   - device flushes: fdatasync and fsync calls of the process, counted by
//     the kernel (perf stat on the syscall tracepoints, from the host);
//   - bytes written: write_bytes of /proc/<pid>/io, what the process sent
//     to the storage layer.

// writeCounts is a snapshot of the counters; a counter the subject does not
// have is NaN.
type writeCounts struct {
	Commits, Statements, Bytes float64
}

// perMsg is the difference of two snapshots, plus the flushes counted
// over the window, divided by the messages completed in it.
type perMsg struct {
	Commits, Statements, Flushes, Bytes float64
}

func (a writeCounts) perMsg(b writeCounts, flushes float64, msgs int) perMsg {
	if msgs <= 0 {
		n := math.NaN()
		return perMsg{n, n, n, n}
	}
	m := float64(msgs)
	return perMsg{(b.Commits - a.Commits) / m, (b.Statements - a.Statements) / m, flushes / m, (b.Bytes - a.Bytes) / m}
}

// counters reads the write counters of a subject's main process.
func (e *env) counters(ctx context.Context, s subject, durable bool) (writeCounts, error) {
	c := writeCounts{Commits: math.NaN(), Statements: math.NaN(), Bytes: math.NaN()}
	pid, err := e.mgr.uintProp(ctx, s.unit, "Service", "MainPID")
	if err != nil {
		return c, err
	}
	out, err := e.run(ctx, "cat", fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return c, err
	}
	if c.Bytes, err = procIOWriteBytes(out); err != nil {
		return c, err
	}
	switch {
	case s.unit == "herald.service":
		text, err := e.adminGet(ctx, "/metrics")
		if err != nil {
			return c, err
		}
		c.Commits, c.Statements = promValue(text, "herald_store_commit_batch_size_count"), promValue(text, "herald_store_statements_total")
	case durable:
		body, err := e.get(ctx, "http://"+s.addr+"/counters")
		if err != nil {
			return c, err
		}
		var v struct{ Commits, Statements float64 }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return c, fmt.Errorf("bench: durable relay counters: %w: %s", err, body)
		}
		c.Commits, c.Statements = v.Commits, v.Statements
	}
	return c, nil
}

// procIOWriteBytes returns write_bytes of a /proc/<pid>/io text.
func procIOWriteBytes(text string) (float64, error) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("bench: no write_bytes in /proc/<pid>/io")
}

// promValue returns the value of an unlabelled sample in Prometheus text,
// NaN if it is not there.
func promValue(text, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				return v
			}
		}
	}
	return math.NaN()
}

// get fetches a URL in the sandbox's network namespace.
func (e *env) get(ctx context.Context, url string) (string, error) {
	return fetch(ctx, e.hc, url)
}

// fetch GETs url with c and returns the body of a 200 answer.
func fetch(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bench: GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// flushCounter counts a process's fdatasync and fsync calls for a while.
type flushCounter struct {
	cmd *exec.Cmd
	out strings.Builder
}

// countFlushes starts counting the device flushes of unit's main process
// for d; wait returns the count. Without perf (or tracepoints) the count is
// NaN and the report says so.
func (e *env) countFlushes(ctx context.Context, unit string, d time.Duration) *flushCounter {
	fc := &flushCounter{}
	pid, err := e.mgr.uintProp(ctx, unit, "Service", "MainPID")
	if err != nil {
		return fc
	}
	host, err := e.hostPID(int(pid))
	if err != nil {
		e.log("  flush count: %v", err)
		return fc
	}
	return e.countFlushesOf(ctx, host, d)
}

// countFlushesOf counts the device flushes of a host process for d.
func (e *env) countFlushesOf(ctx context.Context, hostPID int, d time.Duration) *flushCounter {
	fc := &flushCounter{}
	fc.cmd = exec.CommandContext(ctx, "perf", "stat", "-x,", "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
		"-p", strconv.Itoa(hostPID), "--", "sleep", fmt.Sprintf("%.3f", d.Seconds()))
	fc.cmd.Stderr = &fc.out
	if err := fc.cmd.Start(); err != nil {
		e.log("  flush count: perf: %v", err)
		fc.cmd = nil
	}
	return fc
}

func (fc *flushCounter) wait() float64 {
	if fc.cmd == nil {
		return math.NaN()
	}
	if err := fc.cmd.Wait(); err != nil {
		return math.NaN()
	}
	return perfCount(fc.out.String())
}

// perfCount sums the counts of `perf stat -x,` output; NaN if a line is
// not counted.
func perfCount(out string) float64 {
	total, lines := 0.0, 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:") {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return math.NaN() // "<not counted>" or "<not supported>"
		}
		total += v
		lines++
	}
	if lines == 0 {
		return math.NaN()
	}
	return total
}

// hostPID maps a PID of the sandbox's PID namespace to the host's: the
// process in the sandbox's namespace whose NSpid ends with pid.
func (e *env) hostPID(pid int) (int, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", e.sbx.PID1()))
	if err != nil {
		return 0, err
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		if l, err := os.Readlink(d + "/ns/pid"); err != nil || l != ns {
			continue
		}
		b, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "NSpid:")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) > 0 && f[len(f)-1] == strconv.Itoa(pid) {
				return strconv.Atoi(filepath.Base(d))
			}
		}
	}
	return 0, fmt.Errorf("bench: no host PID for PID %d of the sandbox", pid)
}
