#!/bin/sh
# File I/O: overwrites, holes, offsets past 2^31 and 2^32, appends and region writes from two
# processes, O_DIRECT, fsync, fallocate, exec of binaries and scripts stored on the share, and
# writable MAP_SHARED mmap.
# Usage: sh io.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
#
# mmap: busybox 1.35 has no mmap tool, and the applets that mmap at all map read-only (insmod, rpm)
# or a device: devmem maps the fixed path /dev/mem with MAP_SHARED, PROT_READ|PROT_WRITE. In a private
# mount namespace whose /dev/mem is a file of the share (bind-mounted), `devmem ADDR 32 VAL` stores
# through a real writable shared mapping of a virtio-fs file (and `devmem ADDR 32` loads through one).
# Exec of a binary from the share maps it MAP_PRIVATE (the read-only page-in path).
#
# On a share mounted dax=always the exec tests run programs from the DAX window.
set -u
. "${0%/*}/lib.sh"
setup io "$@"
umask 022

# poke OFFSET STRING FILE: writes STRING at byte OFFSET without truncating (one write).
poke() { printf %s "$2" | dd of="$3" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc status=none; }
# peek OFFSET COUNT FILE: prints COUNT bytes from byte OFFSET.
peek() { dd if="$3" bs="$2" count=1 skip="$1" iflag=skip_bytes status=none; }
# zeros N: sha256 of N zero bytes.
zeros() { head -c "$1" /dev/zero | sha -; }

t write-read
printf 'hello\n' >f
eq hello "$(cat f)" "read back"
drop_caches
eq hello "$(cat f)" "read back from the server"

t overwrite-middle
printf 'abcdefgh' >f
succeeds poke 3 XY f
eq abcXYfgh "$(cat f)" content
eq 8 "$(st %s f)" "size unchanged"

t write-past-eof # the gap reads as zeros
printf 'ab' >f
succeeds poke 10 Z f
eq 11 "$(st %s f)" size
drop_caches
eq "$(printf 'ab\0\0\0\0\0\0\0\0Z' | sha -)" "$(sha f)" "ab, eight zeros, Z"

t sparse-hole-1mib
succeeds poke 1048576 end sp
eq 1048579 "$(st %s sp)" size
drop_caches
eq "$(zeros 1048576)" "$(head -c 1048576 sp | sha -)" "the hole reads as zeros"
eq end "$(peek 1048576 3 sp)" "the data after it"
rm sp

t offset-past-2g # bytes on both sides of 2^31
succeeds poke 2147483647 XY big
eq 2147483649 "$(st %s big)" size
drop_caches
eq XY "$(peek 2147483647 2 big)" "read back"
eq "$(zeros 4096)" "$(peek 1073741824 4096 big | sha -)" "hole at 1 GiB"

t offset-past-4g # bytes on both sides of 2^32
succeeds poke 4294967294 CDEF big
eq 4294967298 "$(st %s big)" size
drop_caches
eq CDEF "$(peek 4294967294 4 big)" "read back"
eq XY "$(peek 2147483647 2 big)" "the bytes at 2^31 kept"
eq "$(zeros 4096)" "$(peek 3221225472 4096 big | sha -)" "hole at 3 GiB"
succeeds truncate -s 4294967296 big
eq 4294967296 "$(st %s big)" "truncated to 2^32"
eq CD "$(peek 4294967294 4 big)" "the bytes below 2^32 kept"
rm big

t append-two-processes # O_APPEND (>>): no line lost or torn
(for i in $(seq 1 100); do echo "A $i" >>log; done) &
p1=$!
(for i in $(seq 1 100); do echo "B $i" >>log; done) &
p2=$!
wait $p1 $p2
eq 200 "$(wc -l <log | tr -d ' ')" "lines"
eq 0 "$(grep -cv '^[AB] [0-9]*$' log)" "torn lines"
eq "$(seq 1 100)" "$(grep '^A ' log | cut -d' ' -f2)" "A's lines in order"
eq "$(seq 1 100)" "$(grep '^B ' log | cut -d' ' -f2)" "B's lines in order"

t append-blocks-two-processes # dd oflag=append: every 1000-byte write lands whole
head -c 50000 /dev/zero | tr '\0' a >"$SCRATCH/a"
head -c 50000 /dev/zero | tr '\0' b >"$SCRATCH/b"
dd if="$SCRATCH/a" of=ap bs=1000 oflag=append conv=notrunc status=none &
p1=$!
dd if="$SCRATCH/b" of=ap bs=1000 oflag=append conv=notrunc status=none &
p2=$!
wait $p1 $p2
eq 100000 "$(st %s ap)" size
drop_caches
eq "50 $(repeat 1000 a)|50 $(repeat 1000 b)" "$(fold -w 1000 ap | sort | uniq -c | sed 's/^ *//' | tr '\n' '|' | sed 's/|$//')" "100 whole blocks"

t distinct-regions-two-processes # conv=notrunc writes into one file, interleaved, concurrently
head -c 100 "$SCRATCH/a" >"$SCRATCH/a100"
head -c 100 "$SCRATCH/b" >"$SCRATCH/b100"
head -c 4096 /dev/urandom >"$SCRATCH/pa"
head -c 4096 /dev/urandom >"$SCRATCH/pb"
true >"$SCRATCH/expect"
i=0
while [ $i -lt 16 ]; do
  cat "$SCRATCH/a100" "$SCRATCH/b100" >>"$SCRATCH/expect"
  i=$((i + 1))
done
i=0
while [ $i -lt 16 ]; do
  cat "$SCRATCH/pa" "$SCRATCH/pb" >>"$SCRATCH/expect"
  i=$((i + 1))
done
(
  i=0
  while [ $i -lt 16 ]; do
    dd if="$SCRATCH/a100" of=rg bs=100 seek=$((2 * i)) conv=notrunc status=none
    dd if="$SCRATCH/pa" of=rg bs=4096 seek=$((1 + 2 * i)) conv=notrunc status=none
    i=$((i + 1))
  done
) &
p1=$!
(
  i=0
  while [ $i -lt 16 ]; do
    dd if="$SCRATCH/b100" of=rg bs=100 seek=$((2 * i + 1)) conv=notrunc status=none
    dd if="$SCRATCH/pb" of=rg bs=4096 seek=$((2 + 2 * i)) conv=notrunc status=none
    i=$((i + 1))
  done
) &
p2=$!
wait $p1 $p2
# sub-page pieces in the first 3200 bytes (inside page 0, padded by the page writes after them)
eq $((4096 + 32 * 4096)) "$(st %s rg)" size
drop_caches
eq "$(head -c 3200 "$SCRATCH/expect" | sha -)" "$(head -c 3200 rg | sha -)" "100-byte pieces"
eq "$(zeros 896)" "$(peek 3200 896 rg | sha -)" "the rest of page 0"
eq "$(tail -c 131072 "$SCRATCH/expect" | sha -)" "$(tail -c 131072 rg | sha -)" "4096-byte pages"

t o-direct
head -c 16384 /dev/urandom >"$SCRATCH/d"
succeeds dd if="$SCRATCH/d" of=od bs=4096 oflag=direct status=none
eq "$(sha "$SCRATCH/d")" "$(dd if=od bs=4096 iflag=direct status=none | sha -)" "O_DIRECT write then O_DIRECT read"
eq "$(sha "$SCRATCH/d")" "$(sha od)" "buffered read of the same file"

t fsync
succeeds dd if="$SCRATCH/d" of=fs bs=4096 conv=fsync status=none
eq "$(sha "$SCRATCH/d")" "$(sha fs)" content
succeeds sync

t fallocate
if fallocate -l 1048576 fa 2>"$SCRATCH/out"; then
  eq 1048576 "$(st %s fa)" "size after fallocate -l 1 MiB"
  eq "$(zeros 1048576)" "$(sha fa)" "reads as zeros"
  printf 'keep' >fk
  succeeds fallocate -o 100 -l 100 fk
  eq 200 "$(st %s fk)" "grown by a range past EOF"
  eq keep "$(head -c 4 fk)" "old bytes kept"
elif grep -q 'not supported' "$SCRATCH/out"; then
  skip "fallocate(2) is optional and the server does not do it: $(cat "$SCRATCH/out")"
else
  fail "fallocate: $(cat "$SCRATCH/out")"
fi

t exec-binary
bb=$(busybox_bin)
succeeds cp "$bb" ./busybox
succeeds chmod 755 busybox
eq hi "$(./busybox echo hi 2>&1)" "./busybox echo hi"
eq "$(sha "$bb")" "$(./busybox sha256sum ./busybox | cut -d' ' -f1)" "it hashes itself right"
drop_caches
eq 'hi again' "$(./busybox echo hi again 2>&1)" "exec after drop_caches (pages come from the server)"

t exec-script
printf '#!/bin/sh\necho "script says $1"\n' >s.sh
chmod +x s.sh
eq 'script says hi' "$(./s.sh hi 2>&1)" "./s.sh hi"
printf '#!%s sh\necho "interpreter on the share"\n' "$W/busybox" >s2.sh
chmod 755 s2.sh
eq 'interpreter on the share' "$(./s2.sh 2>&1)" "#! naming a binary on the share"
printf '#!/bin/sh\necho "rewritten"\n' >s.sh
eq rewritten "$(./s.sh 2>&1)" "the new content runs after a rewrite"

t exec-needs-x-bit
printf '#!/bin/sh\necho ran\n' >nox.sh
chmod 644 nox.sh
fails_with 'Permission denied' ./nox.sh
chmod 100 nox.sh
eq ran "$(./nox.sh 2>&1)" "mode 100 runs (root)"

t mmap-shared-write # see the comment at the top
# devmem_on FILE ARGS: busybox devmem with FILE as its /dev/mem, in a private mount namespace.
devmem_on() {
  f=$1
  shift
  unshare -m --propagation private sh -c 'mount -t tmpfs none /dev && : >/dev/mem && mount --bind "$0" /dev/mem && exec "$@"' "$f" "$(busybox_bin)" devmem "$@"
}
dd if=/dev/zero of=mm bs=4096 count=3 status=none
# 0x1ffe..0x2001 crosses the page boundary at 0x2000: devmem maps both pages
succeeds devmem_on "$W/mm" 0x1ffe 32 0x44434241
eq ABCD "$(peek 8190 4 mm)" "read() sees the store through the mapping"
eq 12288 "$(st %s mm)" "size unchanged"
drop_caches
eq ABCD "$(peek 8190 4 mm)" "after sync and drop_caches: the server has it"
eq "$(zeros 8190)" "$(head -c 8190 mm | sha -)" "nothing else changed"
succeeds poke 100 wxyz mm
eq 0x7A797877 "$(devmem_on "$W/mm" 100 32 2>&1)" "a shared mapping sees what write() stored"
drop_caches
eq 0x44434241 "$(devmem_on "$W/mm" 0x1ffe 32 2>&1)" "a fresh mapping after drop_caches"

finish
