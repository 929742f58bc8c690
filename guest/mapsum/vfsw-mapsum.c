// SPDX-License-Identifier: BSD-2-Clause
/*
 * vfsw-mapsum: maps a file (PROT_READ, MAP_PRIVATE) and adds up every 32-bit word of it through the
 * mapping, for the benchmark of loads from a mapped file (busybox has no program that reads a file by
 * mapping it). MAP_PRIVATE, so it also maps a cache=never file (direct_io refuses MAP_SHARED); a
 * read-only private mapping of a DAX file loads from the window itself.
 *
 *   vfsw-mapsum FILE
 *
 * Prints the sum (mod 2^32) in hex. Exit 1 on an error, 2 on bad usage. No libc (i386 system calls
 * straight), so the tool adds 1 KiB to the initramfs rather than static glibc's 700.
 */
typedef unsigned int u32;
typedef unsigned long long u64;

enum { SYS_exit = 1, SYS_write = 4, SYS_open = 5, SYS_mmap2 = 192, SYS_fstat64 = 197 };
enum { PROT_READ = 1, MAP_PRIVATE = 2 };

static long sys(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  // ebp holds the sixth argument; it is saved around the call, as the compiler may use it.
  __asm__ volatile("push %%ebp\n\tmov %7, %%ebp\n\tint $0x80\n\tpop %%ebp"
                   : "=a"(ret)
                   : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e), "m"(f)
                   : "memory");
  return ret;
}

/* struct stat64 on i386: st_size is the 64-bit field at byte 44. */
struct stat64_i386 {
  unsigned char head[44];
  u64 st_size;
  unsigned char tail[96 - 52];
};

static void out(int fd, const char *s, long n) { sys(SYS_write, fd, (long)s, n, 0, 0, 0); }
static long len(const char *s) { long n = 0; while (s[n]) n++; return n; }
__attribute__((noreturn)) static void quit(int status) { for (;;) sys(SYS_exit, status, 0, 0, 0, 0, 0); }
__attribute__((noreturn)) static void fail(const char *what) { out(2, "vfsw-mapsum: ", 13); out(2, what, len(what)); out(2, " failed\n", 8); quit(1); }

__attribute__((used, noreturn)) void mapsum(int argc, char **argv);
void mapsum(int argc, char **argv) {
  if (argc != 2) {
    out(2, "usage: vfsw-mapsum FILE\n", 24);
    quit(2);
  }
  long fd = sys(SYS_open, (long)argv[1], 0 /* O_RDONLY */, 0, 0, 0, 0);
  struct stat64_i386 st;
  if (fd < 0) fail("open");
  if (sys(SYS_fstat64, fd, (long)&st, 0, 0, 0, 0) < 0) fail("fstat64");
  if (st.st_size > 0x7ffff000ULL) fail("a file this big: mmap");
  u32 words = (u32)(st.st_size / 4), sum = 0;
  if (words > 0) {
    long p = sys(SYS_mmap2, 0, (long)(words * 4), PROT_READ, MAP_PRIVATE, fd, 0);
    if ((unsigned long)p > -4096UL) fail("mmap");
    const volatile u32 *w = (const volatile u32 *)p;
    for (u32 i = 0; i < words; i++) sum += w[i];
  }
  char hex[9];
  for (int i = 0; i < 8; i++) hex[i] = "0123456789abcdef"[(sum >> (28 - 4 * i)) & 15];
  hex[8] = '\n';
  out(1, hex, 9);
  quit(0);
}

/* The kernel starts us with argc at the stack pointer and argv above it. */
__asm__(".globl _start\n_start:\n\txor %ebp, %ebp\n\tmov %esp, %eax\n\tand $-16, %esp\n\tsub $8, %esp\n\tlea 4(%eax), %ecx\n\tpush %ecx\n\tpush (%eax)\n\tcall mapsum\n\thlt\n");
