/*
 * vfsw-lock: takes, tests or drops one fcntl(2) record lock from the shell, for the guest's lock tests
 * (busybox has no such tool; util-linux flock(1) covers flock(2)).
 *
 *   vfsw-lock [-r|-w|-u|-g] [-n] [-o] [-s START] [-l LEN] FILE [CMD [ARG...]]
 *
 *   -r / -w / -u   read lock, write lock (the default), unlock
 *   -g             F_GETLK: print "unlocked", or "read|write START LEN PID" of a conflicting lock
 *   -n             F_SETLK (fail at once) instead of F_SETLKW (wait)
 *   -o             an open file description lock (F_OFD_*) instead of a POSIX (process) lock
 *   -s, -l         the range: START (default 0) and LEN bytes (default 0: to the end of the file)
 *
 * With CMD the lock is held while CMD runs (FILE stays open; CMD inherits nothing of it) and the exit
 * status is CMD's. Exit 1: the lock is held elsewhere (EAGAIN/EACCES with -n); 3: EDEADLK; 2: other errors.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* struct flock is flock64 for every command, OFD ones included */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void) {
  fputs("usage: vfsw-lock [-r|-w|-u|-g] [-n] [-o] [-s START] [-l LEN] FILE [CMD [ARG...]]\n", stderr);
  exit(2);
}

int main(int argc, char **argv) {
  short type = F_WRLCK;
  int get = 0, nowait = 0, ofd = 0, c;
  long long start = 0, len = 0;
  while ((c = getopt(argc, argv, "+rwugnos:l:")) != -1) {
    switch (c) {
    case 'r': type = F_RDLCK; break;
    case 'w': type = F_WRLCK; break;
    case 'u': type = F_UNLCK; break;
    case 'g': get = 1; break;
    case 'n': nowait = 1; break;
    case 'o': ofd = 1; break;
    case 's': start = strtoll(optarg, NULL, 0); break;
    case 'l': len = strtoll(optarg, NULL, 0); break;
    default: usage();
    }
  }
  if (optind >= argc) usage();
  const char *path = argv[optind];
  int fd = open(path, type == F_RDLCK ? O_RDONLY : O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "vfsw-lock: %s: %s\n", path, strerror(errno));
    return 2;
  }
  struct flock fl = {.l_type = get && type == F_UNLCK ? F_WRLCK : type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  int cmd = get ? (ofd ? F_OFD_GETLK : F_GETLK) : nowait ? (ofd ? F_OFD_SETLK : F_SETLK) : (ofd ? F_OFD_SETLKW : F_SETLKW);
  if (fcntl(fd, cmd, &fl) < 0) {
    int e = errno;
    fprintf(stderr, "vfsw-lock: %s: %s\n", path, strerror(e));
    return e == EAGAIN || e == EACCES ? 1 : e == EDEADLK ? 3 : 2;
  }
  if (get) {
    if (fl.l_type == F_UNLCK) puts("unlocked");
    else printf("%s %lld %lld %d\n", fl.l_type == F_RDLCK ? "read" : "write", (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid);
    return 0;
  }
  if (optind + 1 >= argc) return 0; /* a POSIX lock goes with this process now; an OFD lock with the fd */
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    close(fd);
    execvp(argv[optind + 1], argv + optind + 1);
    fprintf(stderr, "vfsw-lock: %s: %s\n", argv[optind + 1], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
