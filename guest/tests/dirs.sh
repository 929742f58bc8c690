#!/bin/sh
# Directories: deep paths, name length limits, rmdir rules, odd names, a 10,000-entry directory.
# Usage: sh dirs.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
set -u
. "${0%/*}/lib.sh"
setup dirs "$@"
umask 022

t mkdir-p-deep
deep=deep
i=2
while [ $i -le 30 ]; do
  deep=$deep/d$i
  i=$((i + 1))
done
succeeds mkdir -p "$deep"
eq directory "$(st %F "$deep")" "level 30 exists"
eq 30 "$(find deep -type d | wc -l)" "30 directories"
echo bottom >"$deep/file"
eq bottom "$(cat "$deep/file")" "a file at the bottom"
eq "$W/$deep" "$(cd "$deep" && pwd -P)" "pwd at the bottom"
ups=$(repeat 28 x | sed 's,x,../,g')
eq "$W/deep/d2" "$(cd "$deep/$ups" && pwd -P)" "28 levels of .."
succeeds rm -r deep
missing deep

t dot-entries
mkdir de
true >de/x
eq '. .. x' "$(ls -a de | tr '\n' ' ' | sed 's/ $//')" "ls -a"
eq "$(st %i .)" "$(st %i de/..)" "de/.. is the parent"
eq "$(st %i de)" "$(st %i de/.)" "de/. is de"
rm -r de

t name-255
n255=$(repeat 255 a)
succeeds create "$n255"
exists "$n255"
eq "$n255" "$(ls | grep "^$n255\$")" "listed"
succeeds mkdir "d$(repeat 254 b)"
eq directory "$(st %F "d$(repeat 254 b)")" "a directory with a 255-byte name"
succeeds rm "$n255"
succeeds rmdir "d$(repeat 254 b)"

t name-255-bytes-utf8 # NAME_MAX counts bytes: 127 two-byte characters + 1 = 255 bytes
nu=$(repeat 127 x | sed 's/x/é/g')x
succeeds create "$nu"
eq 255 "$(printf '%s' "$nu" | wc -c)" "name is 255 bytes"
exists "$nu"
succeeds rm "$nu"
fails_with 'File name too long' create "${nu}y"

t name-256
n256=$(repeat 256 a)
fails_with 'File name too long' create "$n256"
fails_with 'File name too long' mkdir "$n256"
missing "$n256"
fails_with 'File name too long' stat "$n256"

t statfs-name-max
eq 255 "$(stat -f -c %l .)" "statfs f_namelen"

t odd-names
succeeds create -dash 'with space' 'tab	in' "$(printf 'new\nline')" 'ünïcödé' '*' '?' '\' '.hidden' '..x'
n=0
for f in * .[!.]* ..?*; do [ -e "$f" ] && n=$((n + 1)); done
eq 10 "$n" "entries seen by glob"
exists "$(printf 'new\nline')"
exists 'ünïcödé'
succeeds rm -- -dash 'with space' 'tab	in' "$(printf 'new\nline')" 'ünïcödé' '*' '?' '\' '.hidden' '..x'
eq '' "$(ls -A)" "all removed"

t rmdir-non-empty
mkdir ne
true >ne/f
fails_with 'Directory not empty' rmdir ne
exists ne/f "content kept"
rm ne/f
succeeds rmdir ne
missing ne

t rmdir-errors
true >file
fails_with 'Not a directory' rmdir file
fails_with 'No such file or directory' rmdir nothing
mkdir ex
fails_with 'File exists' mkdir ex
fails_with 'File exists' mkdir file
succeeds rmdir ex
rm file

t dir-over-dir-rename
mkdir -p src/in empty full
true >full/f
succeeds mv -T src empty
exists empty/in "replaced an empty directory"
missing src
fails_with 'Directory not empty' mv -T empty full
exists empty/in "source kept"
exists full/f "target kept"
rm -r empty full

t nlink-of-new-dir
mkdir nl
ge "$(st %h nl)" 1 "nlink"
rmdir nl

# 10,000 entries: one directory listed across many READDIR replies, every name exactly once.
# Created by the shell itself (open O_CREAT per name, no process per file).
t big-dir
mkdir big
seq 1 10000 | sed 's/^/file-/' | sort >"$SCRATCH/expected"
(cd big && while read -r f; do true >"$f" || exit 1; done <"$SCRATCH/expected")
eq 0 $? "creating the files"
ls big >"$SCRATCH/ls"
eq 10000 "$(wc -l <"$SCRATCH/ls" | tr -d ' ')" "ls | wc -l"
sort "$SCRATCH/ls" >"$SCRATCH/listed"
succeeds cmp "$SCRATCH/expected" "$SCRATCH/listed"
t big-dir-lookups
eq 'regular empty file' "$(st %F big/file-1)" "first"
eq 'regular empty file' "$(st %F big/file-5000)" "middle"
eq 'regular empty file' "$(st %F big/file-10000)" "last"
missing big/file-10001
# rm -r unlinks entries while it is still reading the directory: the listing must not skip any.
# (Not `xargs rm`: busybox 1.35 runs rm inside xargs and garbles its arguments after a few thousand.)
t big-dir-remove
succeeds rm -r big
missing big

finish
