// SPDX-License-Identifier: BSD-2-Clause
// vfsw-fsx: a randomized file exerciser in the spirit of xfstests' fsx. It performs random operations
// on one file (pwrite, pread, MAP_SHARED loads and stores, msync, ftruncate, fallocate, copy_file_range
// within the file and from a second one, fsync, fdatasync, close-and-reopen) and checks every byte it
// reads, and the size fstat reports after each operation, against a model held in memory. At the end
// it closes, reopens and reads the whole file: what was acknowledged must persist.
//
//   vfsw-fsx [-n OPS] [-s SEED] [-l MAXLEN] [-N] FILE
//     -n OPS     operations to do (default 1000)
//     -s SEED    seed of the PRNG (default: from the clock); a seed gives the same operations
//     -l MAXLEN  the file's maximum size in bytes (default 262144); one operation spans up to MAXLEN/4
//     -N         skip operations the file system reports unsupported (EOPNOTSUPP, ENOSYS; ENODEV from
//                mmap, as FUSE's direct_io answers MAP_SHARED) instead of failing, and report them
//   FILE.src is the second file (copy_file_range's source), removed on success.
//
// Exit status 0 with one summary line, 1 on the first mismatch or unexpected error (with the seed, the
// operation and the last operations), 2 on bad usage. Built static for i386 by guest/build.
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum op {
	OP_WRITE, OP_READ, OP_MAPWRITE, OP_MAPREAD, OP_MSYNC, OP_TRUNCATE, OP_FALLOC, OP_FALLOC_KEEP,
	OP_PUNCH, OP_COPY, OP_COPY_FROM, OP_FSYNC, OP_FDATASYNC, OP_REOPEN, NOPS
};
static const char *const op_names[NOPS] = {
	"write", "read", "mapwrite", "mapread", "msync", "truncate", "falloc", "falloc-keep",
	"punch", "copy", "copy-from", "fsync", "fdatasync", "reopen",
};
// How often each operation is drawn, out of the sum.
static const unsigned op_weights[NOPS] = { 6, 6, 3, 3, 2, 3, 1, 1, 2, 2, 2, 1, 1, 1 };

#define LOG_LEN 10
struct logent { unsigned long num; enum op op; off_t off, len, arg; };

static const char *path;
static char *src_path;
static int fd = -1, src_fd = -1;
static uint64_t seed, rng;
static off_t maxlen = 262144, maxop, size, src_size;
static unsigned long nops = 1000, opnum;
static int skip_unsupported;
static unsigned char *model, *src_model, *buf;
static unsigned long done[NOPS];
static int unsupported[NOPS]; // errno that made -N drop the operation, 0 while it is supported
static struct logent oplog[LOG_LEN];
static long pagesize;

// xorshift64*: small, and the same sequence for a seed on every host.
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}
static off_t below(off_t n) { return n > 0 ? (off_t)(rnd() % (uint64_t)n) : 0; }

static void print_log(void)
{
	unsigned long first = opnum >= LOG_LEN ? opnum - LOG_LEN + 1 : 1, i;
	fprintf(stderr, "last operations:\n");
	for (i = first; i <= opnum; i++) {
		const struct logent *e = &oplog[i % LOG_LEN];
		if (e->num != i)
			continue;
		fprintf(stderr, "  %6lu %-11s off %-8jd len %-7jd arg %jd\n", e->num, op_names[e->op],
			(intmax_t)e->off, (intmax_t)e->len, (intmax_t)e->arg);
	}
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vfsw-fsx: %s: seed %" PRIu64 ", op %lu: ", path, seed, opnum);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_log();
	exit(1);
}

static int is_unsupported(int err, enum op op)
{
	return err == EOPNOTSUPP || err == ENOSYS || (err == ENODEV && (op == OP_MAPWRITE || op == OP_MAPREAD || op == OP_MSYNC));
}

// A failed system call: with -N an unsupported operation is dropped for the rest of the run (returns 0);
// anything else ends the run.
static int failed(enum op op, const char *call)
{
	int err = errno;
	if (skip_unsupported && is_unsupported(err, op)) {
		unsupported[op] = err;
		return 0;
	}
	die("%s: %s", call, strerror(err));
}

static void check_bytes(const unsigned char *want, const unsigned char *got, off_t off, off_t len, const char *what)
{
	off_t i, bad = 0;
	if (memcmp(want, got, (size_t)len) == 0)
		return;
	for (i = 0; i < len && want[i] == got[i]; i++)
		;
	for (off_t j = i; j < len; j++)
		bad += want[j] != got[j];
	die("%s of %jd bytes at %jd: byte %jd is 0x%02x, expected 0x%02x (%jd bytes differ; file size %jd)",
	    what, (intmax_t)len, (intmax_t)off, (intmax_t)(off + i), got[i], want[i], (intmax_t)bad, (intmax_t)size);
}

static void check_size(const char *when)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat: %s", strerror(errno));
	if (st.st_size != size)
		die("%s: fstat says size %jd, expected %jd", when, (intmax_t)st.st_size, (intmax_t)size);
}

static void fill_random(unsigned char *p, off_t len)
{
	for (off_t i = 0; i < len; i++)
		p[i] = (unsigned char)(rnd() >> 56);
}

static void set_size(off_t n)
{
	if (n < size)
		memset(model + n, 0, (size_t)(size - n)); // the model stays zero past EOF: growth reads zeros
	size = n;
}

static void do_pwrite(int f, const unsigned char *p, off_t off, off_t len)
{
	off_t n = 0;
	while (n < len) {
		ssize_t r = pwrite(f, p + n, (size_t)(len - n), off + n);
		if (r <= 0)
			die("pwrite at %jd: %s", (intmax_t)(off + n), r < 0 ? strerror(errno) : "wrote nothing");
		n += r;
	}
}

// Reads up to len bytes at off into buf; returns how many before EOF.
static off_t do_pread(off_t off, off_t len)
{
	off_t n = 0;
	while (n < len) {
		ssize_t r = pread(fd, buf + n, (size_t)(len - n), off + n);
		if (r < 0)
			die("pread at %jd: %s", (intmax_t)(off + n), strerror(errno));
		if (r == 0)
			break;
		n += r;
	}
	return n;
}

static void op_write(off_t off, off_t len)
{
	fill_random(buf, len);
	do_pwrite(fd, buf, off, len);
	memcpy(model + off, buf, (size_t)len);
	if (off + len > size)
		size = off + len;
}

static void op_read(off_t off, off_t len)
{
	off_t want = off >= size ? 0 : (off + len > size ? size - off : len);
	off_t got = do_pread(off, len);
	if (got != want)
		die("read of %jd bytes at %jd returned %jd, expected %jd (file size %jd)", (intmax_t)len,
		    (intmax_t)off, (intmax_t)got, (intmax_t)want, (intmax_t)size);
	check_bytes(model + off, buf, off, got, "read");
}

// Stores through a MAP_SHARED mapping (growing the file first: a store past EOF is SIGBUS), and with
// do_msync msync(MS_SYNC)s before unmapping.
static void op_mapwrite(enum op op, off_t off, off_t len, int do_msync)
{
	off_t pg = off & ~(off_t)(pagesize - 1), mlen = off + len - pg;
	unsigned char *m;
	if (off + len > size) {
		if (ftruncate(fd, off + len) < 0)
			die("ftruncate to %jd before mapwrite: %s", (intmax_t)(off + len), strerror(errno));
		set_size(off + len);
	}
	m = mmap(NULL, (size_t)mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg);
	if (m == MAP_FAILED) {
		failed(op, "mmap");
		return;
	}
	fill_random(buf, len);
	memcpy(m + (off - pg), buf, (size_t)len);
	memcpy(model + off, buf, (size_t)len);
	if (do_msync && msync(m, (size_t)mlen, MS_SYNC) < 0)
		die("msync: %s", strerror(errno));
	if (munmap(m, (size_t)mlen) < 0)
		die("munmap: %s", strerror(errno));
}

static void op_mapread(off_t off, off_t len)
{
	off_t pg, mlen;
	unsigned char *m;
	off %= size;
	if (off + len > size)
		len = size - off;
	pg = off & ~(off_t)(pagesize - 1);
	mlen = off + len - pg;
	m = mmap(NULL, (size_t)mlen, PROT_READ, MAP_SHARED, fd, pg);
	if (m == MAP_FAILED) {
		failed(OP_MAPREAD, "mmap");
		return;
	}
	memcpy(buf, m + (off - pg), (size_t)len);
	if (munmap(m, (size_t)mlen) < 0)
		die("munmap: %s", strerror(errno));
	check_bytes(model + off, buf, off, len, "mapread");
}

static void op_fallocate(enum op op, off_t off, off_t len)
{
	int mode = op == OP_FALLOC ? 0 : op == OP_FALLOC_KEEP ? FALLOC_FL_KEEP_SIZE : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (fallocate(fd, mode, off, len) < 0) {
		failed(op, "fallocate");
		return;
	}
	if (op == OP_PUNCH && off < size)
		memset(model + off, 0, (size_t)(off + len > size ? size - off : len));
	if (op == OP_FALLOC && off + len > size)
		size = off + len;
}

// copy_file_range of len bytes from (from, soff) to (fd, doff); a short copy before the source's EOF
// is retried, a copy that stops early is a failure.
static void op_copy(enum op op, int from, const unsigned char *from_model, off_t soff, off_t doff, off_t len)
{
	off_t n = 0;
	while (n < len) {
		loff_t s = soff + n, d = doff + n;
		ssize_t r = copy_file_range(from, &s, fd, &d, (size_t)(len - n), 0);
		if (r < 0) {
			if (n == 0 && !failed(op, "copy_file_range"))
				return;
			die("copy_file_range after %jd bytes: %s", (intmax_t)n, strerror(errno));
		}
		if (r == 0)
			die("copy_file_range of %jd bytes from %jd to %jd stopped after %jd", (intmax_t)len,
			    (intmax_t)soff, (intmax_t)doff, (intmax_t)n);
		n += r;
	}
	memmove(model + doff, from_model + soff, (size_t)len);
	if (doff + len > size)
		size = doff + len;
}

static void reopen(void)
{
	if (close(fd) < 0)
		die("close: %s", strerror(errno));
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("reopen: %s", strerror(errno));
}

static enum op pick_op(void)
{
	unsigned total = 0, r;
	int i;
	for (i = 0; i < NOPS; i++)
		total += unsupported[i] ? 0 : op_weights[i];
	r = (unsigned)(rnd() % total);
	for (i = 0; i < NOPS; i++) {
		if (unsupported[i])
			continue;
		if (r < op_weights[i])
			break;
		r -= op_weights[i];
	}
	return (enum op)i;
}

static void step(void)
{
	enum op op = pick_op();
	off_t off = below(maxlen), len = below(maxop) + 1, arg = 0;
	struct logent *e = &oplog[opnum % LOG_LEN];

	if (off + len > maxlen)
		len = maxlen - off;
	switch (op) {
	case OP_MAPREAD: // within the file: nothing to map in an empty one
		if (size == 0)
			return;
		break;
	case OP_TRUNCATE: arg = below(maxlen + 1); break;
	case OP_COPY: // a source before EOF, and a destination that does not overlap it
		if (size == 0)
			return;
		arg = below(size);
		if (arg + len > size)
			len = size - arg;
		if (off < arg + len && arg < off + len)
			off = arg + len + len <= maxlen ? arg + len : (arg >= len ? arg - len : -1);
		if (off < 0)
			return;
		break;
	case OP_COPY_FROM:
		arg = below(src_size);
		if (arg + len > src_size)
			len = src_size - arg;
		break;
	default: break;
	}
	*e = (struct logent){ opnum, op, off, len, arg };

	switch (op) {
	case OP_WRITE: op_write(off, len); break;
	case OP_READ: op_read(off, len); break;
	case OP_MAPWRITE: op_mapwrite(op, off, len, 0); break;
	case OP_MSYNC: op_mapwrite(op, off, len, 1); break;
	case OP_MAPREAD: op_mapread(off, len); break;
	case OP_TRUNCATE:
		if (ftruncate(fd, arg) < 0)
			die("ftruncate to %jd: %s", (intmax_t)arg, strerror(errno));
		set_size(arg);
		break;
	case OP_FALLOC: case OP_FALLOC_KEEP: case OP_PUNCH: op_fallocate(op, off, len); break;
	case OP_COPY: op_copy(op, fd, model, arg, off, len); break;
	case OP_COPY_FROM: op_copy(op, src_fd, src_model, arg, off, len); break;
	case OP_FSYNC: if (fsync(fd) < 0) failed(op, "fsync"); break;
	case OP_FDATASYNC: if (fdatasync(fd) < 0) failed(op, "fdatasync"); break;
	case OP_REOPEN: reopen(); break;
	case NOPS: break;
	}
	if (!unsupported[op])
		done[op]++;
	check_size(op_names[op]);
}

static void usage(void)
{
	fprintf(stderr, "usage: vfsw-fsx [-n OPS] [-s SEED] [-l MAXLEN] [-N] FILE\n");
	exit(2);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int c, i, have_seed = 0;
	double t0;
	char *end;

	while ((c = getopt(argc, argv, "n:s:l:N")) != -1) {
		switch (c) {
		case 'n': nops = strtoul(optarg, &end, 0); if (*end) usage(); break;
		case 's': seed = strtoull(optarg, &end, 0); if (*end) usage(); have_seed = 1; break;
		case 'l': maxlen = (off_t)strtoll(optarg, &end, 0); if (*end || maxlen < 4) usage(); break;
		case 'N': skip_unsupported = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1)
		usage();
	path = argv[optind];
	if (!have_seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rng = seed ^ 0x9E3779B97F4A7C15ULL; // xorshift's state must not be 0
	if (rng == 0)
		rng = 1;
	maxop = maxlen / 4;
	src_size = maxlen;
	pagesize = sysconf(_SC_PAGESIZE);
	model = calloc(1, (size_t)maxlen);
	src_model = malloc((size_t)src_size);
	buf = malloc((size_t)maxlen);
	if (asprintf(&src_path, "%s.src", path) < 0 || !model || !src_model || !buf)
		die("out of memory");

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	src_fd = open(src_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || src_fd < 0)
		die("open: %s", strerror(errno));
	fill_random(src_model, src_size);
	do_pwrite(src_fd, src_model, 0, src_size);

	t0 = now();
	for (opnum = 1; opnum <= nops; opnum++)
		step();
	opnum = nops;

	// What was acknowledged must be there after a close: a fresh open reads it all.
	reopen();
	check_size("after the last reopen");
	if (do_pread(0, size) != size)
		die("the final read of %jd bytes ended short", (intmax_t)size);
	check_bytes(model, buf, 0, size, "final read");
	if (close(fd) < 0 || close(src_fd) < 0 || unlink(src_path) < 0)
		die("closing: %s", strerror(errno));

	printf("vfsw-fsx: %s: seed %" PRIu64 ": %lu ops ok in %.1f s, size %jd:", path, seed, nops, now() - t0, (intmax_t)size);
	for (i = 0; i < NOPS; i++)
		if (done[i])
			printf(" %s %lu", op_names[i], done[i]);
	for (i = 0; i < NOPS; i++)
		if (unsupported[i])
			printf(" [%s unsupported: %s]", op_names[i], strerror(unsupported[i]));
	printf("\n");
	return 0;
}
