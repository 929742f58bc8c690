// Linux constants the filesystem contract speaks in (i386 guest values; Node's fs.constants do not exist
// in the browser).

// File type bits of `mode` (Linux values; Node's fs.constants do not exist in the browser).
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
// Set-id and sticky bits.
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
/** Every bit of `mode` that chmod(2) sets: permissions, set-id and sticky. */
export const S_IALLUGO = 0o7777;

// open(2) flags as the i386 guest sends them in fuse_open_in.flags.
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

// access(2) mask bits.
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

/** Longest name, in UTF-8 bytes (Linux NAME_MAX). */
export const NAME_MAX = 255;
/**
 * Largest `read` a backend serves. FUSE reads are at most max_pages (256) pages; the limit only keeps a
 * hostile length from allocating gigabytes.
 */
export const MAX_IO_SIZE = 16 << 20;

// fallocate(2) modes, lseek(2) whences, setxattr(2) flags, renameat2(2) flags (Linux values).
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** Longest xattr name in bytes, and largest value (Linux XATTR_NAME_MAX, XATTR_SIZE_MAX). */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
/** Longest path, with its NUL (Linux PATH_MAX): a symlink target has at most PATH_MAX - 1 bytes. */
export const PATH_MAX = 4096;
