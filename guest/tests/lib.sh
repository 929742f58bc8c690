# A tiny test harness for busybox sh (ash), sourced by every script in guest/tests/. The scripts also run
# under a distribution's sh and tools (a guest booted from a Debian root): where a check needs the system
# call itself and a GNU tool answers first (ln on a directory, mv into a subdirectory), or needs an applet
# only busybox has (devmem, syslogd), it runs busybox's by its path (busybox_bin).
#
#   . "${0%/*}/lib.sh"
#   setup AREA "$@"        # works in a fresh directory DIR/AREA.PID (DIR: $1, else $VFSW_DIR, else /mnt)
#   t NAME                 # starts a test (ends the previous one)
#   eq EXPECTED ACTUAL MSG # assertions record a failure and carry on; the test fails if any did
#                          # (also ne, ge, gt, le, contains, exists, missing)
#   succeeds CMD...        # CMD must exit 0 (its output is kept: `out` prints it)
#   fails CMD...           # CMD must exit non-zero
#   fails_with TEXT CMD... # ... and print TEXT (errno is not visible to sh: the strerror text is)
#   skip REASON            # ends the current test as not doable here
#   ok                     # ends the current test now (optional: `t` and `finish` end it too)
#   finish                 # ends the last test, removes the work directory, prints the summary
#
# Output, one line per test: `ok NAME`, `FAIL NAME: messages` or `skip NAME: reason`; other lines
# start with `# ` (or `sum ` in integrity.sh). The last line is exactly `N passed, M failed`, and the
# exit status is non-zero if anything failed. The host runner (test/boot/posix.test.ts) parses this.
#
# Environment: VFSW_DIR (directory under test, if no $1), VFSW_KEEP=1 (leave the work directory),
# VFSW_TIMING=1 (a `# time NAME SECONDS` line after each test),
# BUSYBOX (a busybox binary to copy onto the share; default: the one running this shell, else
# /bin/busybox), TMPDIR (scratch space off the share; default /tmp, the guest's tmpfs).
#
# Busybox ash only: no bashisms, no `local` arrays, no [[ ]]. errno is not visible to the shell, so
# error checks match the strerror text busybox prints (glibc's, e.g. "File name too long").

T_PASS=0 T_FAIL=0 T_SKIP=0 T_NAME= T_MSG= T_FINISHED= W= SCRATCH= T_AREA= T_START=0

# --- tests -----------------------------------------------------------------------------------------

t() {
  _t_end
  T_NAME=$1 T_MSG=
  [ -z "${VFSW_TIMING:-}" ] || T_START=$(_centis)
}

# Guest uptime in hundredths of a second (for VFSW_TIMING=1: a `# time NAME SECONDS` line per test).
_centis() {
  read -r _up _ </proc/uptime
  echo $((${_up%.*} * 100 + 1${_up#*.} - 100))
}

# Records a failure of the current test (the test goes on; every message is reported, on one line).
fail() {
  T_MSG="${T_MSG:+$T_MSG; }$(printf '%s' "$*" | tr '\n' ' ')"
}

ok() { _t_end; }

# Ends the current test as skipped: it could not be done here (give the reason).
skip() {
  [ -n "$T_NAME" ] || return 0
  echo "skip $T_NAME: $*"
  T_SKIP=$((T_SKIP + 1)) T_NAME= T_MSG=
}

_t_end() {
  [ -n "$T_NAME" ] || return 0
  if [ -n "${VFSW_TIMING:-}" ]; then
    _c=$(($(_centis) - T_START))
    note "time $T_NAME $((_c / 100)).$((_c / 10 % 10))$((_c % 10))s"
  fi
  if [ -z "$T_MSG" ]; then
    echo "ok $T_NAME"
    T_PASS=$((T_PASS + 1))
  else
    echo "FAIL $T_NAME: $T_MSG"
    T_FAIL=$((T_FAIL + 1))
  fi
  T_NAME= T_MSG=
}

# Prints a diagnostic line (ignored by the runner).
note() { echo "# $*"; }

# --- assertions (each returns non-zero when it failed, so `eq ... || return` style works) ---------

eq() {
  [ "$1" = "$2" ] && return 0
  fail "${3:+$3: }expected '$1', got '$2'"
  return 1
}

ne() {
  [ "$1" != "$2" ] && return 0
  fail "${3:+$3: }expected something other than '$1'"
  return 1
}

# Numeric comparisons: ge A B MSG means A >= B.
ge() { _num "$1" -ge "$2" ">=" "${3:-}"; }
gt() { _num "$1" -gt "$2" ">" "${3:-}"; }
le() { _num "$1" -le "$2" "<=" "${3:-}"; }
_num() {
  [ "$1" "$2" "$3" ] 2>/dev/null && return 0
  fail "${5:+$5: }expected $1 $4 $3"
  return 1
}

# contains HAYSTACK NEEDLE MSG
contains() {
  case $1 in *"$2"*) return 0 ;; esac
  fail "${3:+$3: }'$1' does not contain '$2'"
  return 1
}

# The command must succeed; its output goes to $SCRATCH/out (read it with `out`).
succeeds() {
  "$@" >"$SCRATCH/out" 2>&1
  _rc=$?
  [ $_rc -eq 0 ] && return 0
  fail "'$*' exited $_rc: $(head -c 300 "$SCRATCH/out")"
  return 1
}

# The command must fail (non-zero exit status).
fails() {
  if "$@" >"$SCRATCH/out" 2>&1; then
    fail "'$*' succeeded, expected it to fail"
    return 1
  fi
  return 0
}

# fails_with TEXT CMD...: the command must fail and its output must contain TEXT (the errno's text).
fails_with() {
  _want=$1
  shift
  fails "$@" || return 1
  case $(cat "$SCRATCH/out") in *"$_want"*) return 0 ;; esac
  fail "'$*' failed without '$_want': $(head -c 300 "$SCRATCH/out")"
  return 1
}

out() { cat "$SCRATCH/out"; }

exists() { [ -e "$1" ] || [ -L "$1" ] || { fail "${2:+$2: }$1 does not exist"; return 1; }; }
missing() { if [ -e "$1" ] || [ -L "$1" ]; then fail "${2:+$2: }$1 still exists"; return 1; fi; }

# st FORMAT PATH: one `stat -c` field (the error text if stat fails, so a comparison reports it).
st() { stat -c "$1" "$2" 2>&1; }

# sha FILE: the sha256 of a file (or of stdin with -).
sha() { sha256sum "$1" 2>&1 | cut -d' ' -f1; }

# --- helpers ---------------------------------------------------------------------------------------

# until_true SECS CMD...: runs CMD until it succeeds; non-zero if SECS seconds of guest uptime pass
# first. Timed by /proc/uptime (read with a builtin), not by counting sleeps: `sleep` may fail (see
# the note on 32-bit time at the end of this file), and then this loop just spins.
until_true() {
  _secs=$1
  shift
  read -r _up _ </proc/uptime
  _end=$((${_up%.*} + _secs))
  until "$@"; do
    read -r _up _ </proc/uptime
    [ "${_up%.*}" -ge $_end ] && return 1
    sleep 0.1 2>/dev/null
  done
  return 0
}

# wait_for PATH [SECS]: waits until PATH exists (default up to 20 s); non-zero on timeout.
wait_for() { until_true "${2:-20}" [ -e "$1" ]; }

# create FILE...: makes empty files (or empties them) with the shell's own open(O_CREAT|O_TRUNC).
# `true >F`, never `: >F`: a failed redirection of a special builtin (`:`) ends a POSIX shell.
create() {
  for _f in "$@"; do
    true >"$_f" || return 1
  done
}

# Writes back dirty pages and drops the guest's page, dentry and inode caches, so the next read goes
# to the file server. Quiet where not permitted (a host run as non-root).
drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# A busybox binary that can be copied: $BUSYBOX, else the busybox running this shell, else /bin/busybox,
# else the copy a guest booted from a root keeps beside its init.
# (busybox ash answers `command -v busybox` with a bare applet name, no path.)
busybox_bin() {
  for _b in ${BUSYBOX:-} "$(readlink -f /proc/$$/exe 2>/dev/null)" /bin/busybox /run/vfsw/busybox; do
    [ -f "$_b" ] && "$_b" --list </dev/null 2>/dev/null | grep -qx sh && echo "$_b" && return 0 # not dash: it takes --list for a script
  done
  return 1
}

# Waits until the file server's clock has moved to a later second than when called: the times of
# files changed after `tick` are greater than those of files changed before. It writes .tick in the
# current directory until the server stamps it with a later second (write(2): no utimensat, no
# trust in the guest's clock running no faster than the server's).
tick() {
  echo >.tick
  _t0=$(st %Y .tick)
  sleep 1 2>/dev/null
  until_true 10 _tick_past "$_t0"
  rm -f .tick
}
_tick_past() { echo >.tick && [ "$(st %Y .tick)" -gt "$1" ]; }

have() { command -v "$1" >/dev/null 2>&1; }

# A string of N copies of character C (N up to a few thousand).
repeat() { printf "%$1s" "" | tr ' ' "$2"; }

# --- setup and summary -----------------------------------------------------------------------------

# setup AREA [DIR]: scratch space off the share, and a fresh work directory DIR/AREA.PID as cwd.
# With `setup -n AREA [DIR]` no work directory is made (the script only reads what is there).
setup() {
  _mk=1
  if [ "$1" = -n ]; then _mk= && shift; fi
  T_AREA=$1
  VFSW_DIR=${2:-${VFSW_DIR:-/mnt}}
  trap _on_exit EXIT
  trap 'exit 130' INT TERM
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/vfsw-$T_AREA.XXXXXX") || { T_NAME=setup; fail "mktemp failed"; exit 1; }
  note "$T_AREA: testing in $VFSW_DIR"
  [ -n "$_mk" ] || return 0
  W=$VFSW_DIR/$T_AREA.$$
  if [ -e "$W" ] || ! mkdir "$W" 2>"$SCRATCH/out"; then
    T_NAME=setup
    fail "cannot make a fresh work directory $W: $(cat "$SCRATCH/out")"
    W=
    exit 1
  fi
  cd "$W" || exit 1
}

finish() {
  T_FINISHED=1
  exit 0
}

_on_exit() {
  _status=$?
  trap - EXIT
  if [ -z "$T_FINISHED" ]; then
    [ -n "$T_NAME" ] || T_NAME=${T_AREA:-script}
    fail "script ended early (status $_status)"
  fi
  _t_end
  cd / || true
  if [ -n "$W" ]; then
    if [ "${VFSW_KEEP:-}" = 1 ]; then
      note "kept $W"
    else
      t cleanup
      rm -rf "$W" 2>"$SCRATCH/out" || fail "rm -rf $W: $(cat "$SCRATCH/out")"
      missing "$W"
      # Only reported when it failed: a clean removal is no test of its own.
      if [ -n "$T_MSG" ]; then _t_end; else T_NAME=; fi
    fi
  fi
  [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"
  echo "$T_PASS passed, $T_FAIL failed"
  [ "$T_FAIL" -eq 0 ] && exit 0
  exit 1
}

# 32-bit time: Debian's i386 busybox-static has a 32-bit time_t and calls the 32-bit time system
# calls (utimensat 320, clock_nanosleep 267, ...). A kernel built without CONFIG_COMPAT_32BIT_TIME
# (the guest's was, until guest/kernel.config turned it on) answers them ENOSYS: touch then fails
# ("Function not implemented", and creates nothing), and sleep, usleep and timeout return at once.
# So that such a kernel fails only the tests of utimensat: files are created with `true >`, never
# touch; nothing uses timeout; waits are bounded by /proc/uptime (until_true), not by sleep counts.
