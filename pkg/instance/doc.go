// SPDX-License-Identifier: Apache-2.0

// Package instance makes sure only one herald works on a state directory at
// a time, with a lock the kernel releases when the process dies.
//
// Acquire takes a POSIX record lock (fcntl(2) F_SETLK, F_WRLCK over the whole
// file: https://man7.org/linux/man-pages/man2/fcntl.2.html, "Advisory record
// locking") on <dir>/herald.lock. The lock belongs to the process: when herald
// exits for any reason, SIGKILL included, the kernel drops it and the next
// start succeeds at once. Nothing is ever written into the file. On conflict
// F_GETLK asks the kernel which process holds the lock, so the error names a
// PID that is current, unlike a PID file, which goes stale and can name an
// unrelated process after PID reuse.
//
// This complements the D-Bus check in package unitstate, which is
// check-then-act and blind to herald instances not run by systemd.
//
// # The POSIX lock pitfall
//
// A POSIX record lock is owned by the (process, file) pair, not by the file
// descriptor: closing ANY descriptor of the lock file in this process
// releases the lock, even one opened later for an unrelated reason (a
// backup, a directory scan that opens files). Therefore:
//
//   - Lock keeps exactly one descriptor and nothing else in herald may open
//     <dir>/herald.lock. Acquire refuses a second lock on the same file in
//     the same process instead of silently sharing (and later dropping) it.
//   - The descriptor is close-on-exec; a child does not inherit the lock
//     (POSIX locks are never inherited across fork anyway).
//   - NFS and other network file systems may not implement these locks
//     faithfully: keep the state directory local.
//
// Open file description locks (F_OFD_SETLK) avoid the pitfall but report
// l_pid = -1 to F_OFD_GETLK on Linux, so they cannot name the holder.
//
// If the holder runs in another PID namespace, the kernel reports PID 0;
// LockedError then says the holder is unknown.
package instance
