#!/bin/sh
# File locks: an uncontended POSIX lock taken by busybox's passwd, fcntl(2) record and OFD locks through
# vfsw-lock (guest/lock/vfsw-lock.c), and flock(2) through util-linux's flock(1), contended between
# processes of this guest. Whoever keeps the locks (the guest kernel, or the device when guests share a
# backend) must give the same answers; test/boot/guests.test.ts contends across two guests.
# Usage: sh locks.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
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

# hold TOOL ARGS...: takes a lock with `TOOL ARGS... CMD` in the background, CMD running until
# $SCRATCH/release exists; $holder is the tool's pid, the lock's owner.
hold() {
  rm -f "$SCRATCH/held" "$SCRATCH/release"
  "$@" sh -c 'true >"$1"; while [ ! -e "$2" ]; do sleep 0.1; done' _ "$SCRATCH/held" "$SCRATCH/release" &
  holder=$!
  wait_for "$SCRATCH/held" || fail "the holder never got the lock"
}
release() {
  true >"$SCRATCH/release"
  wait $holder
}

true >lk

if ! have vfsw-lock || ! have flock; then
  t lock-tools
  skip "needs vfsw-lock and flock(1) (the guest image has both)"
  finish
fi

t fcntl-write-lock-excludes-its-range
hold vfsw-lock -w -s 0 -l 10 lk
fails vfsw-lock -n -w -s 5 -l 1 lk true
fails_with "Resource temporarily unavailable" vfsw-lock -n -r -s 9 -l 1 lk true
succeeds vfsw-lock -n -w -s 10 -l 10 lk true
eq "write 0 10 $holder" "$(vfsw-lock -g -r -s 0 -l 100 lk)" "F_GETLK names the holder"
eq unlocked "$(vfsw-lock -g -w -s 10 -l 100 lk)" "F_GETLK past the range"
release

t fcntl-read-locks-share
hold vfsw-lock -r lk
succeeds vfsw-lock -n -r -s 3 -l 4 lk true
fails vfsw-lock -n -w -s 3 -l 4 lk true
release
succeeds vfsw-lock -n -w lk true

t fcntl-setlkw-waits-for-unlock
rm -f "$SCRATCH/got"
hold vfsw-lock -w lk
(vfsw-lock -w -s 100 -l 1 lk sh -c 'true >"$1"' _ "$SCRATCH/got") &
waiter=$!
sleep 1
missing "$SCRATCH/got" "the waiter got the lock while it was held"
release
wait $waiter
exists "$SCRATCH/got" "the waiter got the lock after the unlock"

t fcntl-lock-goes-with-a-killed-process
hold vfsw-lock -w lk
kill -9 $holder
wait $holder 2>/dev/null
succeeds vfsw-lock -n -w lk true
true >"$SCRATCH/release"

t ofd-lock-is-the-open-files
hold vfsw-lock -o -w -s 0 -l 1 lk
fails vfsw-lock -n -o -w -s 0 -l 1 lk true
fails vfsw-lock -n -w -s 0 -l 1 lk true
succeeds vfsw-lock -n -o -w -s 1 -l 1 lk true
release
succeeds vfsw-lock -n -o -w -s 0 -l 1 lk true

t exclusive-blocks-nonblocking
hold flock -x lk
fails flock -n lk true
fails flock -s -n lk true
release
succeeds flock -n lk true

t exclusive-blocks-until-released
rm -f "$SCRATCH/got"
hold flock -x lk
(flock -x lk sh -c 'true >"$1"' _ "$SCRATCH/got") &
waiter=$!
sleep 1
missing "$SCRATCH/got" "the waiter got the lock while it was held"
release
wait $waiter
exists "$SCRATCH/got" "the waiter got the lock after release"

t shared-locks-coexist
hold flock -s lk
succeeds flock -s -n lk true
fails flock -x -n lk true
release

t lock-goes-with-the-process
hold flock -x lk
true >"$SCRATCH/release"
wait $holder
succeeds flock -n -x lk true

t lock-survives-rename
hold flock -x lk
succeeds mv lk lk2
fails flock -n lk2 true
release
succeeds flock -n lk2 true
mv lk2 lk

finish
