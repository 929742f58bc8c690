#!/bin/sh
# Hard links, symlinks, rename and unlink, including over files that are still open.
# Usage: sh links.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#
# Reads that must reach the file server come after drop_caches: otherwise the guest's page cache
# could answer for a server that lost the data. `command exec N<F`: a failed redirection of a bare
# `exec` (a special builtin) would end the script.
set -u
. "${0%/*}/lib.sh"
setup links "$@"
umask 022

t hardlink-count
echo data >a
succeeds ln a b
eq 2 "$(st %h a)" "nlink of a"
eq 2 "$(st %h b)" "nlink of b"
eq "$(st %i a)" "$(st %i b)" "same inode"
succeeds ln b c
eq 3 "$(st %h a)" "three names"

t hardlink-shares-data
echo more >>b
drop_caches
eq "$(printf 'data\nmore')" "$(cat a)" "written through b, read through a"
chmod 600 c
eq 600 "$(st %a a)" "mode set through c, seen through a"

t unlink-keeps-other-names
succeeds rm a
missing a
eq 2 "$(st %h b)" "nlink after one unlink"
succeeds unlink c
eq 1 "$(st %h b)" "nlink after two unlinks"
drop_caches
eq "$(printf 'data\nmore')" "$(cat b)" "content kept"
rm b

t hardlink-across-dirs
mkdir -p d1 d2
echo x >d1/f
succeeds ln d1/f d2/g
eq "$(st %i d1/f)" "$(st %i d2/g)" "same inode in two directories"
rm d1/f
eq x "$(cat d2/g)" "second name still reads"
rm -r d1 d2

t hardlink-errors
mkdir hd
fails_with 'not permitted' "$(busybox_bin)" ln hd hd2
missing hd2 "no hard link to a directory"
true >e
fails_with 'File exists' ln e hd/../e
fails_with 'No such file or directory' ln nothing n2
rm -r hd e

t symlink-readlink
echo target-data >target
succeeds ln -s target sl
eq 'symbolic link' "$(st %F sl)" type
eq target "$(readlink sl)" readlink
eq 6 "$(st %s sl)" "size is the target's length"
eq target-data "$(cat sl)" "followed"
eq 'regular file' "$(stat -L -c %F sl)" "stat -L follows"

t symlink-dangling
succeeds ln -s nowhere/at/all dang
eq nowhere/at/all "$(readlink dang)" readlink
[ -L dang ] || fail "dang is not a link"
[ -e dang ] && fail "dang resolves"
fails cat dang

t symlink-absolute-and-dotdot
succeeds ln -s /proc/self ab
eq /proc/self "$(readlink ab)" "absolute target"
[ -d ab/fd ] || fail "an absolute link resolves in the guest's namespace"
mkdir -p sub/inner
echo up >sub/up
succeeds ln -s ../up sub/inner/rel
eq up "$(cat sub/inner/rel)" "relative ../ target"

t symlink-long-target # PATH_MAX: a target of 4095 bytes is the longest
long=$(repeat 4095 x)
succeeds ln -s "$long" lt
got=$(readlink lt)
eq 4095 "${#got}" "readlink length"
eq "$long" "$got" "target kept"
eq 4095 "$(st %s lt)" size

t symlink-to-dir
succeeds ln -s sub sd
eq "$W/sub/inner" "$(cd sd/inner && pwd -P)" "cd through the link"
eq up "$(cat sd/up)" "path through the link"
succeeds rm sd
exists sub/up "removing the link leaves the directory"

t symlink-unlink-and-rename
succeeds mv sl sl2
eq target "$(readlink sl2)" "renamed link"
succeeds rm sl2 dang ab lt
missing sl2
exists target "target untouched"

t rename-over-existing
echo old >x
echo new >y
ino=$(st %i y)
succeeds mv y x
missing y
eq "$ino" "$(st %i x)" "x is y's inode"
drop_caches
eq new "$(cat x)" content
eq 1 "$(st %h x)" nlink
rm x

t rename-over-open-file
echo 'old content' >victim
echo 'new content' >incoming
(
  exec 3<victim || exit 1
  true >"$SCRATCH/opened"
  wait_for "$SCRATCH/go" || exit 1
  cat <&3 >"$SCRATCH/read"
) &
rpid=$!
if wait_for "$SCRATCH/opened"; then
  succeeds mv incoming victim
  drop_caches
  true >"$SCRATCH/go"
  wait $rpid
  eq 0 $? "reader exit status"
  eq 'old content' "$(cat "$SCRATCH/read")" "the open fd reads the replaced file"
  eq 'new content' "$(cat victim)" "the name reads the new file"
else
  fail "the reader never opened the file"
  kill $rpid
fi
rm -f victim incoming "$SCRATCH/go" "$SCRATCH/opened"

t unlink-open-file
echo 'still here' >gone
if command exec 3<gone; then
  succeeds rm gone
  missing gone
  drop_caches
  eq 'still here' "$(cat <&3)" "read through the open fd"
  exec 3<&-
else
  fail "cannot open gone"
fi

t unlink-open-file-write # written after unlink through one fd, read through a new open of /proc/PID/fd
if command exec 4>ghost; then
  succeeds rm ghost
  echo 'written after unlink' >&4
  drop_caches
  eq 'written after unlink' "$(cat /proc/$$/fd/4 2>&1)" "reopened through /proc"
  exec 4>&-
else
  fail "cannot open ghost"
fi

t rename-dir-with-contents
mkdir -p tree/a/b
echo leaf >tree/a/b/leaf
ln -s b/leaf tree/a/lnk
succeeds mv tree moved
missing tree
eq leaf "$(cat moved/a/b/leaf)" "file inside"
eq leaf "$(cat moved/a/lnk)" "relative link inside"
eq "$W/moved/a" "$(cd moved/a/b/.. && pwd -P)" "'..' inside the moved tree"
mkdir dest
succeeds mv moved dest/
eq leaf "$(cat dest/moved/a/b/leaf)" "moved into another directory"
eq "$(st %i dest)" "$(st %i dest/moved/..)" "'..' points at the new parent"
rm -r dest

t rename-dir-keeps-open-cwd
mkdir -p cw/in
( cd cw/in && true >"$SCRATCH/incw" && wait_for "$SCRATCH/cwgo" && pwd -P >"$SCRATCH/cwpwd" && echo made >here ) &
cpid=$!
wait_for "$SCRATCH/incw"
succeeds mv cw cw2
true >"$SCRATCH/cwgo"
wait $cpid
eq "$W/cw2/in" "$(cat "$SCRATCH/cwpwd")" "pwd -P of a process inside the renamed dir"
eq made "$(cat cw2/in/here 2>&1)" "file made there afterwards"
rm -r cw2

t mv-into-own-subdir-fails
mkdir -p p/c
fails_with 'Invalid argument' "$(busybox_bin)" mv p p/c/
fails_with 'Invalid argument' "$(busybox_bin)" mv p p/c/p2
exists p/c "tree intact"

t rename-type-mismatch
true >file
# (file over directory: busybox mv refuses by itself, before rename(2), so it is not tested here)
fails_with 'Not a directory' "$(busybox_bin)" mv -T p file
fails_with 'No such file or directory' mv nothing else
exists file
exists p/c
rm -r p file

t rename-across-dirs-many
mkdir ra rb
for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >ra/$i; done
succeeds mv ra/1 ra/2 ra/3 ra/4 ra/5 ra/6 ra/7 ra/8 ra/9 ra/10 rb/
eq '' "$(ls ra)" "source empty"
eq 10 "$(ls rb | wc -l)" "all ten moved"
eq 7 "$(cat rb/7)" "content follows"
rm -r ra rb

finish
