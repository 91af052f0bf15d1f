# SPDX-License-Identifier: Apache-2.0
#
# In-namespace init of pkg/sandbox (embedded with go:embed; do not run by hand).
# pkg/sandbox starts it as
#   unshare --pid --fork --kill-child=SIGKILL --mount --uts --ipc --net \
#           --propagation private sh -c "$(cat init.sh)" herald-sandbox-init:<name>
# so it is PID 1 of fresh namespaces. It builds a throw-away root (an overlay
# of the host's in RAM) and execs systemd in it. Parameters come from the environment (SBX_*), prepared and
# validated by the Go side:
#   SBX_DIR          empty host directory, only used as a mount point (in here)
#   SBX_HOST_MNTNS   readlink /proc/self/ns/mnt of the host (refuse to run there)
#   SBX_CGROUP       host cgroup2 directory created for this sandbox
#   SBX_SYSTEMD      path of the systemd binary
#   SBX_SHARES       lines "kind<TAB>host<TAB>guest", kind d or f, read-only binds
#   SBX_MASKS        unit names to mask, space separated
#   SBX_LOG_LEVEL    systemd --log-level
set -eu
umask 022
die() { echo "herald-sandbox init: $*" >&2; exit 1; }

# Never touch the host's mounts (a systemd booted on the real root empties the
# host's /tmp through systemd-tmpfiles-setup). Three checks
# before the first mount: we are PID 1 of a new PID namespace, our mount
# namespace is not the host's, and nothing in it propagates back.
[ "$$" = 1 ] || die "not PID 1 of a new PID namespace"
[ -n "${SBX_HOST_MNTNS:-}" ] || die "SBX_HOST_MNTNS unset"
[ "$(readlink /proc/self/ns/mnt)" != "$SBX_HOST_MNTNS" ] || die "still in the host mount namespace"
mount --make-rprivate /
if grep -Eq ' (shared|master):' /proc/self/mountinfo; then die "mount propagation is not private"; fi

# Join the cgroup prepared for us. After the pivot it becomes the root of our
# cgroup namespace and the only cgroup tree the sandboxed systemd sees, so it
# runs in unified mode and never remounts or populates the host's hierarchies
# (on a hybrid host it would remount the host's /sys/fs/cgroup tmpfs read-only).
echo 0 >"$SBX_CGROUP/cgroup.procs"

# Overlay root in RAM. Only the root file system is overlaid.
mount -t tmpfs -o mode=0700 herald-sandbox "$SBX_DIR"
mkdir "$SBX_DIR/upper" "$SBX_DIR/work" "$SBX_DIR/merged"
mount -t overlay herald-sandbox-root \
	-o "lowerdir=/,upperdir=$SBX_DIR/upper,workdir=$SBX_DIR/work" "$SBX_DIR/merged"
chmod 0755 "$SBX_DIR/merged"

# Switch root before anything else is written, so that absolute
# symlinks in the tree (/var/run -> /run ...) resolve inside the sandbox, not
# on the host. The host tree stays reachable at /.oldroot until the shares are
# bound. pivot_root, not chroot: PrivateUsers=yes units need it (the kernel
# refuses CLONE_NEWUSER in a chroot: status 217/USER).
cd "$SBX_DIR/merged"
mkdir .oldroot
pivot_root . .oldroot
cd /
old=/.oldroot

# Pseudo file systems, stricter than binds of the host's: a fresh sysfs of
# our network namespace, read-only, and a private /dev with the usual nodes.
# Binding the host's /sys or /dev would hand host state (cgroup tmpfs, block
# devices, kmsg, console) to the units.
mount -t proc -o nosuid,nodev,noexec proc /proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys
if [ -e /proc/sysrq-trigger ]; then
	mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
	mount -o remount,bind,ro /proc/sysrq-trigger
fi
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -o remount,bind,ro,nosuid,nodev,noexec /sys
mount --bind "$old$SBX_CGROUP" /sys/fs/cgroup
mount -t tmpfs -o mode=0755,nosuid dev /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/full c 1 7
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
mknod -m 0666 /dev/tty c 5 0
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp

# Shares: read-only binds of host paths.
tab=$(printf '\t')
while IFS="$tab" read -r kind host guest; do
	[ -n "$kind" ] || continue
	if [ "$kind" = d ]; then
		mkdir -p -- "$guest"
	else
		mkdir -p -- "$(dirname -- "$guest")"
		[ -e "$guest" ] || : >"$guest"
	fi
	mount --bind -- "$old$host" "$guest"
	mount -o remount,bind,ro -- "$guest"
done <<EOF
${SBX_SHARES:-}
EOF

umount -l "$old"
rmdir "$old"

# Masks, the target and volatile journal storage.
for unit in $SBX_MASKS; do
	ln -sfn /dev/null "/etc/systemd/system/$unit"
done
cat >/etc/systemd/system/herald-sandbox.target <<EOF
[Unit]
Description=herald test sandbox
Wants=dbus.socket systemd-journald.socket
After=dbus.socket systemd-journald.socket
AllowIsolate=yes
EOF
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' >/etc/systemd/journald.conf.d/herald-sandbox.conf
echo herald-sandbox >/etc/hostname

# Mount propagation inside the sandbox, as on a booted machine: systemd
# moves mounts it prepares in forked helpers (the credentials ramfs of
# LoadCredential=, PrivateTmp=, …) back into PID 1's namespace through shared
# propagation, and in container mode it does not make / shared itself. The
# host's tree was made private above and replaced by pivot_root, so these
# peer groups are new and local: nothing propagates to the host.
mount --make-rshared /

# Boot in a new cgroup namespace rooted at SBX_CGROUP, with a
# clean environment.
exec unshare --cgroup env -i container=unshare LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	"$SBX_SYSTEMD" --system --unit=herald-sandbox.target \
	--log-level="$SBX_LOG_LEVEL" --log-color=no --show-status=no
