#!/bin/sh
# Files the host wrote into the share before boot read back right in the guest.
# Usage: sh hostcheck.sh [DIR [SUBDIR]]   (DIR defaults to $VFSW_DIR, then /mnt; SUBDIR to host-written)
#
# The host puts its files in DIR/SUBDIR with a SHA256SUMS file there (lines `SHA256  NAME`, as
# sha256sum prints them). One test per file, plus one that the directory holds exactly those files.
# Read only: it changes nothing on the share.
set -u
. "${0%/*}/lib.sh"
setup -n hostcheck "${1:-}"
H=$VFSW_DIR/${2:-host-written}

if [ ! -f "$H/SHA256SUMS" ]; then
  t host-files
  skip "no $H/SHA256SUMS: the host wrote nothing to check"
  finish
fi

drop_caches
true >"$SCRATCH/names"
while read -r want name; do
  [ -n "$name" ] || continue
  echo "$name" >>"$SCRATCH/names"
  t "host-$name"
  exists "$H/$name" && eq "$want" "$(sha "$H/$name")" sha256
done <"$H/SHA256SUMS"

t host-listing
echo SHA256SUMS >>"$SCRATCH/names"
eq "$(sort "$SCRATCH/names")" "$(ls -A "$H" | sort)" "the directory holds exactly the listed files"

finish
