#!/bin/sh
# Data integrity of guest writes: random files of awkward sizes written in different ways, read back
# after sync and drop_caches (so from the file server), and their sha256 printed for the host.
# Usage: sh integrity.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#        VFSW_KEEP=1 sh integrity.sh DIR   leaves the files for the host to check
#
# Besides the test lines it prints one line per file: `sum SHA256  PATH`, PATH relative to DIR.
set -u
. "${0%/*}/lib.sh"
setup integrity "$@"
rel=${W#"$VFSW_DIR"/}

# Sources in scratch space off the share: what each file on the share must hold.
SIZES='0 1 4095 4096 4097 1048579 5242880'

t write-files
for n in $SIZES; do
  head -c "$n" /dev/urandom >"$SCRATCH/r$n"
  succeeds cp "$SCRATCH/r$n" "r$n"
done
# 1 MiB + 3 in 777-byte writes: no write is page-aligned
succeeds dd if="$SCRATCH/r1048579" of=unaligned bs=777 status=none
# appended in pieces of growing sizes, across page boundaries
true >appended
true >"$SCRATCH/appended"
for n in 1 100 4095 4096 4097 10000 65536 65537 300000; do
  head -c "$n" /dev/urandom >"$SCRATCH/piece"
  cat "$SCRATCH/piece" >>appended
  cat "$SCRATCH/piece" >>"$SCRATCH/appended"
done
# 1 MiB + 3, then 5000 bytes overwritten in place at an odd offset, across pages
cp "$SCRATCH/r1048579" "$SCRATCH/patched"
succeeds cp "$SCRATCH/r1048579" patched
head -c 5000 /dev/urandom >"$SCRATCH/patch"
dd if="$SCRATCH/patch" of="$SCRATCH/patched" bs=5000 seek=300001 oflag=seek_bytes conv=notrunc status=none
succeeds dd if="$SCRATCH/patch" of=patched bs=5000 seek=300001 oflag=seek_bytes conv=notrunc status=none
# 1 MiB + 3, then truncated to an odd size inside the file
head -c 333333 "$SCRATCH/r1048579" >"$SCRATCH/shrunk"
succeeds cp "$SCRATCH/r1048579" shrunk
succeeds truncate -s 333333 shrunk

drop_caches

# check NAME SOURCE: the file on the share holds the bytes of SOURCE; prints its sum line.
check() {
  t "$1"
  _want=$(sha "$2")
  eq "$(wc -c <"$2" | tr -d ' ')" "$(st %s "$1")" size
  eq "$_want" "$(sha "$1")" sha256
  echo "sum $_want  $rel/$1"
}
for n in $SIZES; do check "r$n" "$SCRATCH/r$n"; done
check unaligned "$SCRATCH/r1048579"
check appended "$SCRATCH/appended"
check patched "$SCRATCH/patched"
check shrunk "$SCRATCH/shrunk"

t cp-on-the-share # a copy made on the share, from one inode's pages to another's
succeeds cp r1048579 copy
drop_caches
eq "$(sha "$SCRATCH/r1048579")" "$(sha copy)" sha256
rm -f copy

finish
