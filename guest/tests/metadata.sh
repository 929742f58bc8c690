#!/bin/sh
# Metadata: modes, owners, sizes, link counts and times set through chmod, chown, touch, truncate.
# Usage: sh metadata.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#
# Times: a FUSE server stamps "now" with its own clock (UTIME_NOW, writes), which need not be the
# guest's clock, so "now" is never compared with the guest's `date`: only with other file times, or
# with fixed dates set explicitly.
set -u
. "${0%/*}/lib.sh"
setup metadata "$@"
umask 022

T2001=$(date -d '2001-02-03 04:05:06' +%s) # in the same TZ that touch -d uses

t create-defaults
true >f
eq 'regular empty file' "$(st %F f)" type
eq 644 "$(st %a f)" "mode with umask 022"
eq 0 "$(st %u f)" uid
eq 0 "$(st %g f)" gid
eq 0 "$(st %s f)" size
eq 1 "$(st %h f)" nlink
eq "$(st %Y f)" "$(st %Z f)" "mtime = ctime on creation"

t umask
umask 027
true >f027
mkdir d027
eq 640 "$(st %a f027)" "file mode with umask 027"
eq 750 "$(st %a d027)" "dir mode with umask 027"
umask 022
mkdir -m 0701 d701
eq 701 "$(st %a d701)" "mkdir -m 0701"
eq directory "$(st %F d701)" type

t chmod
for m in 0 600 751 777 4755 2755 1777 6711; do
  succeeds chmod "$m" f && eq "$m" "$(st %a f)" "chmod $m"
done
succeeds chmod u=rw,g=r,o= f && eq 640 "$(st %a f)" "chmod u=rw,g=r,o="
succeeds chmod a+x f && eq 751 "$(st %a f)" "chmod a+x"

t chmod-dir-sticky
mkdir sd
succeeds chmod 1777 sd && eq 1777 "$(st %a sd)" "sticky dir"
succeeds chmod 2755 sd && eq 2755 "$(st %a sd)" "setgid dir"

t size
printf 'abc' >s
eq 3 "$(st %s s)" "3 bytes"
printf 'defg' >>s
eq 7 "$(st %s s)" "after append"
eq abcdefg "$(cat s)" content

t chown
succeeds chown 1234:5678 f
eq '1234 5678' "$(st '%u %g' f)" "chown 1234:5678"
succeeds chgrp 42 f
eq '1234 42' "$(st '%u %g' f)" "chgrp 42"
succeeds chown 4000000000 f
eq 4000000000 "$(st %u f)" "a 32-bit uid above 2^31"
succeeds chown 0:0 f
eq '0 0' "$(st '%u %g' f)" "back to 0:0"

t chown-clears-setuid
chmod 6755 f
succeeds chown 7:7 f
eq 755 "$(st %a f)" "chown of a regular file clears setuid and setgid (even by root)"
chown 0:0 f

# as_other CMD: runs the shell command CMD as uid 1000 (no CAP_FSETID), named in a private /etc/passwd.
# busybox's su: as root it asks nothing (a distribution's su asks PAM, which wants the user in /etc/shadow).
as_other() {
  unshare -m sh -c 'cp /etc/passwd "$1/pw" && echo "other:x:1000:1000::/:/bin/sh" >>"$1/pw" &&
    mount --bind "$1/pw" /etc/passwd && "$3" su other -c "$2"' _ "$SCRATCH" "$1" "$(busybox_bin)"
}
# The mode by stat(2)'s full mask (busybox stat): after a write that cleared set-id bits on the server,
# Linux 6.1's FUSE drops the cached times and size but not the mode, so a statx(2) asking for the mode
# alone (GNU stat -c %a) sees the old one until the attributes time out.
st_full() { "$(busybox_bin)" stat -c "$1" "$2" 2>&1; }

t write-and-truncate-clear-setuid
if [ "$(id -u)" != 0 ] || ! have unshare || ! busybox_bin >/dev/null; then
  skip "needs root, unshare(1) and busybox's su to write as another user"
else
  chmod 6777 f
  echo root >>f
  eq 6777 "$(st %a f)" "a write by root (CAP_FSETID) keeps set-id bits"
  succeeds as_other 'echo other >>f'
  eq 777 "$(st_full %a f)" "a write by another user clears setuid, and setgid as the group may execute"
  chmod 2767 f
  succeeds as_other 'echo other >>f'
  eq 2767 "$(st_full %a f)" "setgid without group execute stays"
  chmod 4777 f
  succeeds as_other 'truncate -s 1 f'
  eq '777 1' "$(st_full '%a %s' f)" "a truncate by another user clears setuid"
  chmod 755 f
fi

t chown-symlink-itself
ln -s f lnk
succeeds chown -h 11:12 lnk
eq '11 12' "$(st '%u %g' lnk)" "chown -h changes the link"
eq '0 0' "$(st '%u %g' f)" "chown -h leaves the target"

t touch-d
succeeds touch -d '2001-02-03 04:05:06' f
eq "$T2001 $T2001" "$(st '%X %Y' f)" "atime and mtime"

t touch-t
succeeds touch -t 200102030405.06 g
eq 'regular empty file' "$(st %F g)" "touch -t creates"
eq "$T2001 $T2001" "$(st '%X %Y' g)" "atime and mtime"

t touch-d-before-1970
succeeds touch -d '1969-12-31 23:59:00' g
eq "$(date -d '1969-12-31 23:59:00' +%s)" "$(st %Y g)" "negative time"

# Not tested: times after 2038-01-19. Debian's i386 busybox-static has a 32-bit time_t, so its touch
# and date reject such dates ("invalid date") and its stat (stat64) cannot show them.

t touch-r
touch -d '2001-02-03 04:05:06' g
succeeds touch -r g h
eq "$T2001 $T2001" "$(st '%X %Y' h)" "copied from g"

t touch-a-only # utimensat(UTIME_NOW, UTIME_OMIT)
touch -d '2001-02-03 04:05:06' f
succeeds touch -a f
gt "$(st %X f)" "$T2001" "atime now"
eq "$T2001" "$(st %Y f)" "mtime untouched"

t touch-m-only # utimensat(UTIME_OMIT, UTIME_NOW)
touch -d '2001-02-03 04:05:06' f
succeeds touch -m f
eq "$T2001" "$(st %X f)" "atime untouched"
gt "$(st %Y f)" "$T2001" "mtime now"

t touch-a-date
touch -d '2001-02-03 04:05:06' f
succeeds touch -a -d '2002-01-01 00:00:00' f
eq "$(date -d '2002-01-01 00:00:00' +%s)" "$(st %X f)" "atime set"
eq "$T2001" "$(st %Y f)" "mtime untouched"

t touch-now-both
touch -d '2001-02-03 04:05:06' f
succeeds touch f
gt "$(st %X f)" "$T2001" "atime now"
gt "$(st %Y f)" "$T2001" "mtime now"
ge "$(st %Z f)" "$(st %Y f)" "ctime >= mtime"

t touch-c-no-create
succeeds touch -c nofile
missing nofile "touch -c"

# One tick (a second of the server's clock) serves every "ctime moves" check below: they all
# compare with times taken before it.
t ctime-moves
create c1 c2 c3 c4
for c in c1 c2 c3 c4; do eval "${c}_m=\$(st %Y $c) ${c}_z=\$(st %Z $c)"; done
tick
succeeds chmod 600 c1
gt "$(st %Z c1)" "$c1_z" "chmod changes ctime"
eq "$c1_m" "$(st %Y c1)" "chmod leaves mtime"
succeeds chown 5:5 c2
gt "$(st %Z c2)" "$c2_z" "chown changes ctime"
eq "$c2_m" "$(st %Y c2)" "chown leaves mtime"
succeeds touch -m -d '2003-01-01 00:00:00' c3
gt "$(st %Z c3)" "$c3_z" "utimensat changes ctime"
succeeds truncate -s 10 c4
gt "$(st %Z c4)" "$c4_z" "truncate changes ctime"
gt "$(st %Y c4)" "$c4_m" "truncate changes mtime"

t truncate-up
printf hello >tr
succeeds truncate -s 10000 tr
eq 10000 "$(st %s tr)" size
eq hello "$(head -c 5 tr)" "old bytes kept"
eq "$(head -c 9995 /dev/zero | sha -)" "$(tail -c 9995 tr | sha -)" "zeros after the old end"

t truncate-down
succeeds truncate -s 3 tr
eq 3 "$(st %s tr)" size
eq hel "$(cat tr)" content
succeeds truncate -s 0 tr
eq 0 "$(st %s tr)" "size 0"
eq '' "$(cat tr)" "empty"

t truncate-down-then-up # the cut bytes must not come back
printf 'abcdefgh' >tr2
truncate -s 2 tr2
truncate -s 8 tr2
eq "$(printf 'ab\0\0\0\0\0\0' | sha -)" "$(sha tr2)" "ab then six zeros"

t truncate-large
succeeds truncate -s 5000000000 tr3
eq 5000000000 "$(st %s tr3)" "a size above 2^32"
succeeds truncate -s 1 tr3
eq 1 "$(st %s tr3)" "back to 1"

t o-trunc
printf 'some bytes' >ot
true >ot
eq 0 "$(st %s ot)" "open with O_TRUNC empties"

finish
