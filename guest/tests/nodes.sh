#!/bin/sh
# Special files: fifos, character and block device nodes, a unix socket.
# Usage: sh nodes.sh [DIR]   (DIR defaults to $VFSW_DIR, then /mnt)
set -u
. "${0%/*}/lib.sh"
setup nodes "$@"
umask 022

t mkfifo
succeeds mkfifo -m 0640 p
eq 'fifo 640 0' "$(st '%F %a %s' p)" "type, mode, size"

t mknod-p
succeeds mknod p2 p
eq fifo "$(st %F p2)" type

t mknod-c
succeeds mknod -m 0600 c0 c 1 3
eq 'character special file 600' "$(st '%F %a' c0)" "type, mode"
eq '1 3' "$(st '%t %T' c0)" "major, minor (hex)"

t mknod-b
succeeds mknod b0 b 254 255
eq 'block special file 644' "$(st '%F %a' b0)" "type, mode"
eq 'fe ff' "$(st '%t %T' b0)" "major, minor (hex)"

t mknod-large-numbers # dev_t is 12 bits of major, 20 of minor
succeeds mknod c1 c 4095 1048575
eq 'fff fffff' "$(st '%t %T' c1)" "largest major, minor"
succeeds mknod c2 c 300 70000
eq '12c 11170' "$(st '%t %T' c2)" "major 300, minor 70000"

t node-chmod-chown
succeeds chmod 0604 c0
succeeds chown 3:4 c0
eq '604 3 4' "$(st '%a %u %g' c0)" "mode, owner"
eq '1 3' "$(st '%t %T' c0)" "device number kept"

t node-rename-link-unlink
succeeds mv c0 c0moved
eq 'character special file 1 3' "$(st '%F %t %T' c0moved)" "renamed node"
succeeds ln c0moved c0link
eq 2 "$(st %h c0moved)" "hard link to a node"
succeeds rm c0moved c0link p2
missing c0moved
missing p2

t char-device-works # the node opens the guest's own driver: /dev/null and /dev/zero semantics
succeeds mknod null c 1 3
succeeds mknod zero c 1 5
echo discarded >null
eq 0 "$(st %s null)" "writes to a null node are discarded"
eq "$(head -c 1000 /dev/zero | sha -)" "$(head -c 1000 zero | sha -)" "zero node reads zeros"

# FIFO tests never wait on a process that may block in open(2) or read(2) forever: `unblock` opens
# the fifo O_RDWR (which never blocks) and closes it, so any opener returns and any reader sees EOF.
unblock() { command exec 5<>"$1" && exec 5<&-; }

t fifo-writer-in-background
(echo 'through the fifo' >p) &
wpid=$!
eq 'through the fifo' "$(cat p)" "reader got the text"
unblock p
wait $wpid
eq 0 $? "writer status"

t fifo-reader-in-background
(cat p >"$SCRATCH/fifo-out") &
rpid=$!
printf 'line 1\nline 2\n' >p
unblock p
wait $rpid
eq "$(printf 'line 1\nline 2')" "$(cat "$SCRATCH/fifo-out")" "reader got both lines"

t fifo-large-transfer # more than a pipe buffer: the writer blocks and resumes
head -c 300000 /dev/urandom >"$SCRATCH/big"
(cat "$SCRATCH/big" >p) &
wpid=$!
eq "$(sha "$SCRATCH/big")" "$(cat p | sha -)" "300000 bytes through the fifo"
unblock p
wait $wpid
eq 0 "$(st %s p)" "a fifo keeps no data on the file system"

# A unix socket bound to a path on the share. busybox nc has no -U, but syslogd binds its socket at
# the fixed path /dev/log and logger sends to it: run both in private mount namespaces whose /dev is a
# directory of the share, so /dev/log is a socket node on the share (FUSE MKNOD with S_IFSOCK), and a
# datagram crosses it.
t unix-socket
bb=$(busybox_bin)
applets=$([ -n "$bb" ] && "$bb" --list 2>/dev/null | grep -cx 'unshare\|syslogd\|logger')
if [ "$applets" != 3 ]; then
  skip "needs a busybox with unshare, syslogd and logger"
else
  mkdir -p root/dev
  # in_root CMD...: CMD with the share's root/dev as /dev.
  in_root() { unshare -m --propagation private sh -c 'mount --bind "$0" /dev && exec "$@"' "$W/root/dev" "$@"; }
  in_root "$bb" syslogd -n -O "$W/root/log" &
  spid=$!
  if wait_for root/dev/log; then
    eq socket "$(st %F root/dev/log)" "type of /dev/log"
    succeeds in_root "$bb" logger -t vfsw 'hello through a socket on the share'
    until_true 20 grep -q 'hello through a socket' root/log 2>/dev/null
    contains "$(cat root/log 2>&1)" 'vfsw: hello through a socket on the share' "the message syslogd received"
  else
    fail "syslogd made no socket at root/dev/log"
  fi
  kill $spid 2>/dev/null
  wait $spid 2>/dev/null
  succeeds rm root/dev/log
  missing root/dev/log "socket node removed"
fi

finish
