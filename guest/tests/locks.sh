#!/bin/sh
# File locks: an uncontended POSIX lock round trip, and flock(2) contention through flock(1).
# Usage: sh locks.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#
# Debian's busybox-static 1.35 has no flock applet (CONFIG_FLOCK is off) and no applet that takes a
# lock on a file the caller names and holds it while another process tries: syslogd's log-file lock
# is compiled out (SYSLOGD_WRLOCK), and passwd holds its F_SETLK on /etc/passwd only while it
# rewrites the file. So in the guest only the uncontended round trip runs (passwd -d in a private mount
# namespace whose /etc is a directory of the share: F_SETLK F_WRLCK then F_UNLCK on a file of the
# share, between a link and a rename); the flock tests below run where a flock(1) exists (util-linux on a host, a later busybox)
# and are reported as `skip` otherwise. Not tested anywhere here, for want of a tool: fcntl lock
# contention (F_SETLK conflict, F_SETLKW waiting, F_GETLK), OFD locks, byte ranges, release on close
# of another fd. Those need a small static i386 helper in the initramfs.
set -u
. "${0%/*}/lib.sh"
setup locks "$@"

t posix-lock-uncontended
bb=$(busybox_bin)
if [ -z "$bb" ] || ! "$bb" --list | grep -qx passwd; then
  skip "needs a busybox with passwd"
else
  mkdir -p R/etc
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' >R/etc/passwd
  printf 'root:*:19000:0:99999:7:::\nuser:$1$salt$xxxxxxxxxxxxxxxxxxxxxx:19000:0:99999:7:::\n' >R/etc/shadow
  chmod 640 R/etc/shadow
  succeeds unshare -m --propagation private sh -c 'mount --bind "$0" /etc && exec "$1" passwd -d user' "$W/R/etc" "$bb"
  case $(out) in *"can't lock"* | *warning*) fail "passwd: $(out)" ;; esac
  eq 1 "$(grep -c '^user::' R/etc/shadow)" "the password is gone from the new shadow"
  eq 1 "$(grep -c '^user:\$1\$salt' R/etc/shadow-)" "the old shadow is kept as shadow- (a hard link, then a rename)"
  eq 1 "$(st %h R/etc/shadow-)" "nlink of the old shadow"
  eq 640 "$(st %a R/etc/shadow)" "the new shadow has the old one's mode"
  rm -r R
fi

if ! have flock; then
  t flock
  skip "no flock(1) here (Debian's busybox-static 1.35 is built without the flock applet)"
  finish
fi

# hold MODE: takes the lock on lk in the background until $SCRATCH/release exists.
hold() {
  rm -f "$SCRATCH/held" "$SCRATCH/release"
  flock "$1" lk sh -c 'true >"$1"; while [ ! -e "$2" ]; do sleep 0.1; done' _ "$SCRATCH/held" "$SCRATCH/release" &
  holder=$!
  wait_for "$SCRATCH/held" || fail "the holder never got the lock"
}
release() {
  true >"$SCRATCH/release"
  wait $holder
}

true >lk

t exclusive-blocks-nonblocking
hold -x
fails flock -n lk true
fails flock -s -n lk true
release
succeeds flock -n lk true

t exclusive-blocks-until-released
hold -x
(flock -x lk sh -c 'true >"$1"' _ "$SCRATCH/got") &
waiter=$!
sleep 1
missing "$SCRATCH/got" "the waiter got the lock while it was held"
release
wait $waiter
exists "$SCRATCH/got" "the waiter got the lock after release"

t shared-locks-coexist
hold -s
succeeds flock -s -n lk true
fails flock -x -n lk true
release

t lock-goes-with-the-process
hold -x
true >"$SCRATCH/release"
wait $holder
succeeds flock -n -x lk true

t lock-survives-rename
hold -x
succeeds mv lk lk2
fails flock -n lk2 true
release
succeeds flock -n lk2 true
mv lk2 lk

finish
