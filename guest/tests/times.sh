#!/bin/sh
# Timestamps after each operation: mtime and ctime of a file and of its parent directory after
# create, write, truncate, chmod, chown, utimes, rename, link, unlink, mkdir, rmdir, symlink.
# Usage: sh times.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#
# Each operation gets its own directory, set up and sampled before one `tick` (lib.sh: waits until
# the server's clock is in a later second), and checked after it: a time POSIX says the operation
# marks for update must have grown; every other time must be unchanged. Times are whole seconds
# from the file server's clock, never compared with the guest's.
# Not asserted: ctime of a renamed file (POSIX: some implementations update it, some do not; it
# must not go back), and atime (relatime/noatime make reads not update it).
set -u
. "${0%/*}/lib.sh"
setup times "$@"
umask 022

# snap NAME PATH: remembers PATH's mtime and ctime as $NAME_m and $NAME_c.
snap() { eval "$1_m=\$(st %Y \"\$2\") $1_c=\$(st %Z \"\$2\")"; }
# grew WHAT NAME PATH FIELD...: each FIELD (m, c) of PATH is later than snapshot NAME's.
grew() {
  _what=$1 _n=$2 _p=$3
  shift 3
  for _f in "$@"; do
    eval "_old=\$${_n}_$_f"
    if [ "$_f" = m ]; then _new=$(st %Y "$_p"); else _new=$(st %Z "$_p"); fi
    gt "$_new" "$_old" "$_what: ${_f}time of $_p"
  done
}
# same WHAT NAME PATH FIELD...: each FIELD of PATH equals snapshot NAME's.
same() {
  _what=$1 _n=$2 _p=$3
  shift 3
  for _f in "$@"; do
    eval "_old=\$${_n}_$_f"
    if [ "$_f" = m ]; then _new=$(st %Y "$_p"); else _new=$(st %Z "$_p"); fi
    eq "$_old" "$_new" "$_what: ${_f}time of $_p unchanged"
  done
}

# Set-up: one directory per operation, with the files the operation needs.
for d in create write trunc otrunc chmod chown utime rename xrename link unlink unlink2 mkdir rmdir symlink; do
  mkdir $d
done
echo data >write/f
echo data >trunc/f
echo data >otrunc/f
true >chmod/f
true >chown/f
true >utime/f
true >rename/f
mkdir xrename/from xrename/to
true >xrename/from/f
true >link/f
true >unlink/f
true >unlink2/f
ln unlink2/f unlink2/g
mkdir rmdir/sub

t create-sets-all-times-equal
true >t0
eq "$(st %Y t0)" "$(st %Z t0)" "mtime = ctime"
eq "$(st %X t0)" "$(st %Y t0)" "atime = mtime"

for d in create write trunc otrunc chmod chown utime rename link unlink unlink2 mkdir rmdir symlink; do snap "d_$d" $d; done
snap d_xfrom xrename/from
snap d_xto xrename/to
for d in write trunc otrunc chmod chown utime rename link unlink2; do snap "f_$d" $d/f; done
snap f_xrename xrename/from/f
tick

t create
true >create/f
grew create d_create create m c
ge "$(st %Y create/f)" "$d_create_m" "the new file's mtime is not before the parent's old one"

t write
echo more >>write/f
grew write f_write write/f m c
same write d_write write m c

t truncate
succeeds truncate -s 2 trunc/f
grew truncate f_trunc trunc/f m c
same truncate d_trunc trunc m c

t open-o-trunc
true >otrunc/f
grew O_TRUNC f_otrunc otrunc/f m c

t chmod
chmod 600 chmod/f
grew chmod f_chmod chmod/f c
same chmod f_chmod chmod/f m
same chmod d_chmod chmod m c

t chown
chown 1:1 chown/f
grew chown f_chown chown/f c
same chown f_chown chown/f m
same chown d_chown chown m c

t utimensat
touch -m utime/f
grew touch f_utime utime/f m c
same touch d_utime utime m c

t rename-in-dir
mv rename/f rename/g
grew rename d_rename rename m c
same rename f_rename rename/g m
ge "$(st %Z rename/g)" "$f_rename_c" "rename: ctime of the file does not go back"

t rename-across-dirs
mv xrename/from/f xrename/to/f
grew rename d_xfrom xrename/from m c
grew rename d_xto xrename/to m c
same rename f_xrename xrename/to/f m

t link
ln link/f link/g
grew link f_link link/f c
grew link d_link link m c
same link f_link link/f m

t unlink-last-name
rm unlink/f
grew unlink d_unlink unlink m c

t unlink-one-of-two-names
rm unlink2/g
grew unlink f_unlink2 unlink2/f c
grew unlink d_unlink2 unlink2 m c
same unlink f_unlink2 unlink2/f m

t mkdir
mkdir mkdir/sub
grew mkdir d_mkdir mkdir m c

t rmdir
rmdir rmdir/sub
grew rmdir d_rmdir rmdir m c

t symlink
ln -s target symlink/l
grew symlink d_symlink symlink m c

t monotonic-sequence # one file through a chain of operations: no time ever goes back
true >seq
last_m=$(st %Y seq) last_c=$(st %Z seq)
for op in 'echo a >>seq' 'chmod 600 seq' 'truncate -s 0 seq' 'mv seq seq2 && mv seq2 seq' 'touch -m seq'; do
  eval "$op"
  m=$(st %Y seq) c=$(st %Z seq)
  ge "$m" "$last_m" "mtime after '$op'"
  ge "$c" "$last_c" "ctime after '$op'"
  ge "$c" "$m" "ctime >= mtime after '$op'"
  last_m=$m last_c=$c
done

finish
