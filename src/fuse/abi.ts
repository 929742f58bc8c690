/**
 * The FUSE wire ABI as `include/uapi/linux/fuse.h` of Linux 6.1 defines it (protocol 7.38).
 *
 * Pure: no Node or DOM API, so the server runs unchanged in Node, a page or a Worker.
 *
 * Conventions
 * - Names are fuse.h's: structs (`fuse_in_header`), fields (`unique`), constants (`FATTR_MODE`).
 *   A C `enum` becomes a frozen object (`FuseOpcode.FUSE_LOOKUP`), a `#define` a top-level constant.
 * - Byte order is little-endian: FUSE messages are in the guest's native order and the guest is x86.
 * - Each struct is a frozen table of field byte offsets plus `SIZE` (`fuse_in_header.unique === 8`),
 *   computed from one declarative field list with the x86-64 C rules (natural alignment, uint64_t
 *   aligned to 8). fuse.h pads explicitly, so the i386 guest's layouts are the same; the unit test
 *   checks both against gcc. Hot paths read fields in place with these offsets and allocate nothing;
 *   `decode`/`encode` convert a whole struct to and from a plain object for colder paths.
 * - 64-bit policy: every 64-bit field decodes to a `bigint`, always. Node ids, file handles, offsets
 *   and lock owners come from a possibly hostile guest and may use all 64 bits; a `number` would
 *   silently round them. Constants used with 64-bit quantities are `bigint` too (the INIT flags,
 *   64-bit since 7.36, and FUSE_SETUPMAPPING_FLAG_*), so TypeScript rejects mixing them with a
 *   32-bit word. 8/16/32-bit fields decode to `number`.
 */

// ---------------------------------------------------------------------------------------------
// Versions, limits, constants (fuse.h #defines, in header order)

import { Errno } from "../vfs/errno.ts";

export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** The node ID of the root inode. */
export const FUSE_ROOT_ID = 1;

/** fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;
export const FATTR_KILL_SUIDGID = 1 << 11;

/** fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_STREAM = 1 << 4;
export const FOPEN_NOFLUSH = 1 << 5;
export const FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;

/**
 * INIT flags, as the 64-bit value the kernel works with: bits 0..31 travel in fuse_init_in/out.flags,
 * bits 32..63 in flags2 (see `initFlags`, `splitInitFlags`).
 */
export const FUSE_ASYNC_READ = 1n << 0n;
export const FUSE_POSIX_LOCKS = 1n << 1n;
export const FUSE_FILE_OPS = 1n << 2n;
export const FUSE_ATOMIC_O_TRUNC = 1n << 3n;
export const FUSE_EXPORT_SUPPORT = 1n << 4n;
export const FUSE_BIG_WRITES = 1n << 5n;
export const FUSE_DONT_MASK = 1n << 6n;
export const FUSE_SPLICE_WRITE = 1n << 7n;
export const FUSE_SPLICE_MOVE = 1n << 8n;
export const FUSE_SPLICE_READ = 1n << 9n;
export const FUSE_FLOCK_LOCKS = 1n << 10n;
export const FUSE_HAS_IOCTL_DIR = 1n << 11n;
export const FUSE_AUTO_INVAL_DATA = 1n << 12n;
export const FUSE_DO_READDIRPLUS = 1n << 13n;
export const FUSE_READDIRPLUS_AUTO = 1n << 14n;
export const FUSE_ASYNC_DIO = 1n << 15n;
export const FUSE_WRITEBACK_CACHE = 1n << 16n;
export const FUSE_NO_OPEN_SUPPORT = 1n << 17n;
export const FUSE_PARALLEL_DIROPS = 1n << 18n;
export const FUSE_HANDLE_KILLPRIV = 1n << 19n;
export const FUSE_POSIX_ACL = 1n << 20n;
export const FUSE_ABORT_ERROR = 1n << 21n;
export const FUSE_MAX_PAGES = 1n << 22n;
export const FUSE_CACHE_SYMLINKS = 1n << 23n;
export const FUSE_NO_OPENDIR_SUPPORT = 1n << 24n;
export const FUSE_EXPLICIT_INVAL_DATA = 1n << 25n;
export const FUSE_MAP_ALIGNMENT = 1n << 26n;
export const FUSE_SUBMOUNTS = 1n << 27n;
export const FUSE_HANDLE_KILLPRIV_V2 = 1n << 28n;
export const FUSE_SETXATTR_EXT = 1n << 29n;
export const FUSE_INIT_EXT = 1n << 30n;
/** fuse.h writes `(1 << 31)`, a negative int in C; the bit it reserves is bit 31. */
export const FUSE_INIT_RESERVED = 1n << 31n;
export const FUSE_SECURITY_CTX = 1n << 32n;
export const FUSE_HAS_INODE_DAX = 1n << 33n;
/** Added to 7.38 in Linux 6.3: a 6.1 kernel never offers it. */
export const FUSE_CREATE_SUPP_GROUP = 1n << 34n;
export const FUSE_HAS_EXPIRE_ONLY = 1n << 35n;

/** cuse_init_in/out.flags */
export const CUSE_UNRESTRICTED_IOCTL = 1 << 0;

/** fuse_release_in.release_flags */
export const FUSE_RELEASE_FLUSH = 1 << 0;
export const FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1;

/** fuse_getattr_in.getattr_flags */
export const FUSE_GETATTR_FH = 1 << 0;

/** fuse_lk_in.lk_flags */
export const FUSE_LK_FLOCK = 1 << 0;

/** fuse_write_in.write_flags */
export const FUSE_WRITE_CACHE = 1 << 0;
export const FUSE_WRITE_LOCKOWNER = 1 << 1;
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
/** Obsolete alias; this flag implies killing suid/sgid only. */
export const FUSE_WRITE_KILL_PRIV = FUSE_WRITE_KILL_SUIDGID;

/** fuse_read_in.read_flags */
export const FUSE_READ_LOCKOWNER = 1 << 1;

/** fuse_ioctl_in/out.flags */
export const FUSE_IOCTL_COMPAT = 1 << 0;
export const FUSE_IOCTL_UNRESTRICTED = 1 << 1;
export const FUSE_IOCTL_RETRY = 1 << 2;
export const FUSE_IOCTL_32BIT = 1 << 3;
export const FUSE_IOCTL_DIR = 1 << 4;
export const FUSE_IOCTL_COMPAT_X32 = 1 << 5;
export const FUSE_IOCTL_MAX_IOV = 256;

/** fuse_poll_in.flags */
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;

/** fuse_fsync_in.fsync_flags */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;

/** fuse_attr.flags */
export const FUSE_ATTR_SUBMOUNT = 1 << 0;
export const FUSE_ATTR_DAX = 1 << 1;

/** fuse_open_in/fuse_create_in.open_flags */
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0;

/** fuse_setxattr_in.setxattr_flags */
export const FUSE_SETXATTR_ACL_KILL_SGID = 1 << 0;

/** fuse_notify_inval_entry_out.flags */
export const FUSE_EXPIRE_ONLY = 1 << 0;

/** The read buffer is required to be at least 8k, but may be much larger. */
export const FUSE_MIN_READ_BUFFER = 8192;

/**
 * Sizes of structs as older protocol minors send or expect them: a struct arrives or leaves
 * truncated to these (see the `size` argument of `decode`/`encode`).
 */
export const FUSE_COMPAT_ENTRY_OUT_SIZE = 120;
export const FUSE_COMPAT_ATTR_OUT_SIZE = 96;
export const FUSE_COMPAT_MKNOD_IN_SIZE = 8;
export const FUSE_COMPAT_WRITE_IN_SIZE = 24;
export const FUSE_COMPAT_STATFS_SIZE = 48;
/** Linux 6.1 still sends this short fuse_setxattr_in unless the server set FUSE_SETXATTR_EXT. */
export const FUSE_COMPAT_SETXATTR_IN_SIZE = 8;
export const FUSE_COMPAT_INIT_OUT_SIZE = 8;
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;

export const CUSE_INIT_INFO_MAX = 4096;

/** fuse_setupmapping_in.flags (a 64-bit field, hence bigint) */
export const FUSE_SETUPMAPPING_FLAG_WRITE = 1n << 0n;
export const FUSE_SETUPMAPPING_FLAG_READ = 1n << 1n;

/** fuse_rename2_in.flags, from include/uapi/linux/fs.h. */
export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

/** From include/uapi/linux/limits.h: bytes, not counting the NUL. */
export const NAME_MAX = 255;
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
export const XATTR_LIST_MAX = 65536;

// ---------------------------------------------------------------------------------------------
// Enums

/** enum fuse_opcode, complete. */
export const FuseOpcode = Object.freeze({
  FUSE_LOOKUP: 1,
  FUSE_FORGET: 2, // no reply
  FUSE_GETATTR: 3,
  FUSE_SETATTR: 4,
  FUSE_READLINK: 5,
  FUSE_SYMLINK: 6,
  FUSE_MKNOD: 8,
  FUSE_MKDIR: 9,
  FUSE_UNLINK: 10,
  FUSE_RMDIR: 11,
  FUSE_RENAME: 12,
  FUSE_LINK: 13,
  FUSE_OPEN: 14,
  FUSE_READ: 15,
  FUSE_WRITE: 16,
  FUSE_STATFS: 17,
  FUSE_RELEASE: 18,
  FUSE_FSYNC: 20,
  FUSE_SETXATTR: 21,
  FUSE_GETXATTR: 22,
  FUSE_LISTXATTR: 23,
  FUSE_REMOVEXATTR: 24,
  FUSE_FLUSH: 25,
  FUSE_INIT: 26,
  FUSE_OPENDIR: 27,
  FUSE_READDIR: 28,
  FUSE_RELEASEDIR: 29,
  FUSE_FSYNCDIR: 30,
  FUSE_GETLK: 31,
  FUSE_SETLK: 32,
  FUSE_SETLKW: 33,
  FUSE_ACCESS: 34,
  FUSE_CREATE: 35,
  FUSE_INTERRUPT: 36,
  FUSE_BMAP: 37,
  FUSE_DESTROY: 38,
  FUSE_IOCTL: 39,
  FUSE_POLL: 40,
  FUSE_NOTIFY_REPLY: 41,
  FUSE_BATCH_FORGET: 42,
  FUSE_FALLOCATE: 43,
  FUSE_READDIRPLUS: 44,
  FUSE_RENAME2: 45,
  FUSE_LSEEK: 46,
  FUSE_COPY_FILE_RANGE: 47,
  FUSE_SETUPMAPPING: 48,
  FUSE_REMOVEMAPPING: 49,
  FUSE_SYNCFS: 50,
  FUSE_TMPFILE: 51,
  CUSE_INIT: 4096,
  // Reserved so that a byte-swapped INIT is recognisable.
  CUSE_INIT_BSWAP_RESERVED: 1048576,
  FUSE_INIT_BSWAP_RESERVED: 436207616,
} as const);
export type FuseOpcode = (typeof FuseOpcode)[keyof typeof FuseOpcode];
export type FuseOpcodeName = keyof typeof FuseOpcode;

const opcodeNames = new Map<number, FuseOpcodeName>(
  Object.entries(FuseOpcode).map(([name, op]) => [op, name as FuseOpcodeName]),
);

/** fuse.h's name of an opcode (for logs and the inspector); undefined for an unknown one. */
export function fuseOpcodeName(op: number): FuseOpcodeName | undefined {
  return opcodeNames.get(op);
}

/** enum fuse_notify_code: the `error` field of an unsolicited fuse_out_header (unique 0). */
export const FuseNotifyCode = Object.freeze({
  FUSE_NOTIFY_POLL: 1,
  FUSE_NOTIFY_INVAL_INODE: 2,
  FUSE_NOTIFY_INVAL_ENTRY: 3,
  FUSE_NOTIFY_STORE: 4,
  FUSE_NOTIFY_RETRIEVE: 5,
  FUSE_NOTIFY_DELETE: 6,
  FUSE_NOTIFY_CODE_MAX: 7,
} as const);
export type FuseNotifyCode = (typeof FuseNotifyCode)[keyof typeof FuseNotifyCode];

/**
 * enum fuse_ext_type: fuse_ext_header.type of a request extension. Types 0..31 are reserved for
 * fuse_secctx_header, whose nr_secctx sits where the type is. FUSE_EXT_GROUPS came with Linux 6.3.
 */
export const FuseExtType = Object.freeze({
  FUSE_MAX_NR_SECCTX: 31,
  FUSE_EXT_GROUPS: 32,
} as const);
export type FuseExtType = (typeof FuseExtType)[keyof typeof FuseExtType];


// ---------------------------------------------------------------------------------------------
// Struct layouts

type IntCType = "uint16_t" | "uint32_t" | "int32_t" | "uint64_t" | "int64_t";
type WideCType = "uint64_t" | "int64_t";

interface Scalar<C extends IntCType = IntCType, R extends boolean = boolean> {
  readonly kind: "scalar";
  readonly ctype: C;
  readonly size: number;
  /** padding/dummy/unused/spare: optional for `encode`, which writes 0. */
  readonly reserved: R;
}

interface FixedArray<C extends IntCType = IntCType, R extends boolean = boolean> {
  readonly kind: "array";
  readonly ctype: C;
  /** of one element */
  readonly size: number;
  readonly count: number;
  readonly reserved: R;
}

/** A C99 flexible array member: it has an offset, no size, and its length lives in another field. */
interface Flexible {
  readonly kind: "flexible";
  readonly ctype: "char" | "uint32_t";
  readonly size: number;
}

export type Field = Scalar | FixedArray | Flexible | Layout;
export type Fields = { readonly [name: string]: Field };

const SPEC = Symbol("fuse.h struct");

export interface Member {
  readonly name: string;
  readonly field: Field;
  readonly offset: number;
}

export interface StructSpec<F extends Fields = Fields> {
  /** fuse.h's struct tag */
  readonly name: string;
  readonly fields: F;
  /** `fields` in declaration order, with their offsets */
  readonly members: readonly Member[];
  readonly align: number;
}

/** A struct: the byte offset of every field, `SIZE` (sizeof), and its spec under a private key. */
export type Layout<F extends Fields = Fields> = { readonly [K in keyof F]: number } & {
  readonly SIZE: number;
  readonly [SPEC]: StructSpec<F>;
};

type Value<T> =
  T extends Layout<infer G>
    ? Decoded<G>
    : T extends Scalar<WideCType> | FixedArray<WideCType>
      ? T extends Scalar ? bigint : bigint[]
      : T extends Scalar ? number : T extends FixedArray ? number[] : never;

type Input<T> =
  T extends Layout<infer G>
    ? EncodeInput<G>
    : T extends Scalar<WideCType> | FixedArray<WideCType>
      ? T extends Scalar ? bigint | number : readonly (bigint | number)[]
      : T extends Scalar ? number : readonly number[];

/** The plain object `decode` returns: every field but flexible arrays. */
export type Decoded<F extends Fields> = {
  -readonly [K in keyof F as F[K] extends Flexible ? never : K]: Value<F[K]>;
};

type ReservedKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends Scalar<IntCType, true> | FixedArray<IntCType, true> ? K : never;
}[keyof F];

/** What `encode` takes: reserved fields may be left out; 64-bit fields also take a safe-integer number. */
export type EncodeInput<F extends Fields> = {
  readonly [K in keyof F as F[K] extends Flexible ? never : K extends ReservedKeys<F> ? never : K]: Input<F[K]>;
} & { readonly [K in ReservedKeys<F>]?: Input<F[K]> };

/** The decoded value of a struct: `StructValue<typeof fuse_in_header>`. */
export type StructValue<L> = L extends Layout<infer F> ? Decoded<F> : never;
/** The input `encode` accepts for a struct. */
export type StructInput<L> = L extends Layout<infer F> ? EncodeInput<F> : never;

const SCALAR_SIZE: Readonly<Record<IntCType, number>> = {
  uint16_t: 2,
  uint32_t: 4,
  int32_t: 4,
  uint64_t: 8,
  int64_t: 8,
};

function scalar<C extends IntCType, R extends boolean>(ctype: C, reserved: R): Scalar<C, R> {
  return Object.freeze({ kind: "scalar", ctype, size: SCALAR_SIZE[ctype], reserved });
}

function array<C extends IntCType, R extends boolean>(el: Scalar<C, R>, count: number): FixedArray<C, R> {
  return Object.freeze({ kind: "array", ctype: el.ctype, size: el.size, count, reserved: el.reserved });
}

function flexible(ctype: Flexible["ctype"]): Flexible {
  return Object.freeze({ kind: "flexible", ctype, size: ctype === "char" ? 1 : 4 });
}

const u16 = scalar("uint16_t", false);
const u32 = scalar("uint32_t", false);
const i32 = scalar("int32_t", false);
const u64 = scalar("uint64_t", false);
const i64 = scalar("int64_t", false);
const pad16 = scalar("uint16_t", true);
const pad32 = scalar("uint32_t", true);
const pad64 = scalar("uint64_t", true);

/** True for the struct layouts this module exports. */
export function isLayout(x: unknown): x is Layout {
  return typeof x === "object" && x !== null && SPEC in x;
}

// x86-64 SysV: scalars are aligned to their size, a struct to its strictest member.
const alignOf = (f: Field): number => (isLayout(f) ? f[SPEC].align : f.size);
const sizeOf = (f: Field): number =>
  isLayout(f) ? f.SIZE : f.kind === "array" ? f.size * f.count : f.kind === "flexible" ? 0 : f.size;
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function defineStruct<F extends Fields>(name: string, fields: F): Layout<F> {
  const offsets: Record<string, number> = {};
  const members: Member[] = [];
  let end = 0;
  let align = 1;
  for (const [field, f] of Object.entries(fields)) {
    const offset = alignUp(end, alignOf(f));
    offsets[field] = offset;
    members.push(Object.freeze({ name: field, field: f, offset }));
    end = offset + sizeOf(f);
    align = Math.max(align, alignOf(f));
  }
  const spec: StructSpec<F> = Object.freeze({ name, fields, members: Object.freeze(members), align });
  return Object.freeze({ ...offsets, SIZE: alignUp(end, align), [SPEC]: spec }) as Layout<F>;
}

/** The declaration behind a layout: its C name, members in order, alignment. */
export function structSpec<F extends Fields>(layout: Layout<F>): StructSpec<F> {
  return layout[SPEC];
}

// The structs of fuse.h, in header order.

export const fuse_attr = defineStruct("fuse_attr", {
  ino: u64,
  size: u64,
  blocks: u64,
  atime: u64,
  mtime: u64,
  ctime: u64,
  atimensec: u32,
  mtimensec: u32,
  ctimensec: u32,
  mode: u32,
  nlink: u32,
  uid: u32,
  gid: u32,
  rdev: u32,
  blksize: u32,
  flags: u32,
});

export const fuse_kstatfs = defineStruct("fuse_kstatfs", {
  blocks: u64,
  bfree: u64,
  bavail: u64,
  files: u64,
  ffree: u64,
  bsize: u32,
  namelen: u32,
  frsize: u32,
  padding: pad32,
  spare: array(pad32, 6),
});

export const fuse_file_lock = defineStruct("fuse_file_lock", {
  start: u64,
  end: u64,
  type: u32,
  pid: u32, // tgid
});

export const fuse_entry_out = defineStruct("fuse_entry_out", {
  nodeid: u64,
  generation: u64, // nodeid:generation must be unique for the fs's lifetime
  entry_valid: u64, // cache timeout for the name
  attr_valid: u64, // cache timeout for the attributes
  entry_valid_nsec: u32,
  attr_valid_nsec: u32,
  attr: fuse_attr,
});

export const fuse_forget_in = defineStruct("fuse_forget_in", { nlookup: u64 });

export const fuse_forget_one = defineStruct("fuse_forget_one", { nodeid: u64, nlookup: u64 });

export const fuse_batch_forget_in = defineStruct("fuse_batch_forget_in", { count: u32, dummy: pad32 });

export const fuse_getattr_in = defineStruct("fuse_getattr_in", { getattr_flags: u32, dummy: pad32, fh: u64 });

export const fuse_attr_out = defineStruct("fuse_attr_out", {
  attr_valid: u64,
  attr_valid_nsec: u32,
  dummy: pad32,
  attr: fuse_attr,
});

export const fuse_mknod_in = defineStruct("fuse_mknod_in", { mode: u32, rdev: u32, umask: u32, padding: pad32 });

export const fuse_mkdir_in = defineStruct("fuse_mkdir_in", { mode: u32, umask: u32 });

export const fuse_rename_in = defineStruct("fuse_rename_in", { newdir: u64 });

export const fuse_rename2_in = defineStruct("fuse_rename2_in", { newdir: u64, flags: u32, padding: pad32 });

export const fuse_link_in = defineStruct("fuse_link_in", { oldnodeid: u64 });

export const fuse_setattr_in = defineStruct("fuse_setattr_in", {
  valid: u32,
  padding: pad32,
  fh: u64,
  size: u64,
  lock_owner: u64,
  atime: u64,
  mtime: u64,
  ctime: u64,
  atimensec: u32,
  mtimensec: u32,
  ctimensec: u32,
  mode: u32,
  unused4: pad32,
  uid: u32,
  gid: u32,
  unused5: pad32,
});

export const fuse_open_in = defineStruct("fuse_open_in", { flags: u32, open_flags: u32 });

export const fuse_create_in = defineStruct("fuse_create_in", { flags: u32, mode: u32, umask: u32, open_flags: u32 });

export const fuse_open_out = defineStruct("fuse_open_out", { fh: u64, open_flags: u32, padding: pad32 });

export const fuse_release_in = defineStruct("fuse_release_in", {
  fh: u64,
  flags: u32,
  release_flags: u32,
  lock_owner: u64,
});

export const fuse_flush_in = defineStruct("fuse_flush_in", { fh: u64, unused: pad32, padding: pad32, lock_owner: u64 });

export const fuse_read_in = defineStruct("fuse_read_in", {
  fh: u64,
  offset: u64,
  size: u32,
  read_flags: u32,
  lock_owner: u64,
  flags: u32,
  padding: pad32,
});

export const fuse_write_in = defineStruct("fuse_write_in", {
  fh: u64,
  offset: u64,
  size: u32,
  write_flags: u32,
  lock_owner: u64,
  flags: u32,
  padding: pad32,
});

export const fuse_write_out = defineStruct("fuse_write_out", { size: u32, padding: pad32 });

export const fuse_statfs_out = defineStruct("fuse_statfs_out", { st: fuse_kstatfs });

export const fuse_fsync_in = defineStruct("fuse_fsync_in", { fh: u64, fsync_flags: u32, padding: pad32 });

export const fuse_setxattr_in = defineStruct("fuse_setxattr_in", {
  size: u32,
  flags: u32,
  setxattr_flags: u32,
  padding: pad32,
});

export const fuse_getxattr_in = defineStruct("fuse_getxattr_in", { size: u32, padding: pad32 });

export const fuse_getxattr_out = defineStruct("fuse_getxattr_out", { size: u32, padding: pad32 });

export const fuse_lk_in = defineStruct("fuse_lk_in", {
  fh: u64,
  owner: u64,
  lk: fuse_file_lock,
  lk_flags: u32,
  padding: pad32,
});

export const fuse_lk_out = defineStruct("fuse_lk_out", { lk: fuse_file_lock });

export const fuse_access_in = defineStruct("fuse_access_in", { mask: u32, padding: pad32 });

export const fuse_init_in = defineStruct("fuse_init_in", {
  major: u32,
  minor: u32,
  max_readahead: u32,
  flags: u32,
  flags2: u32,
  unused: array(pad32, 11),
});

export const fuse_init_out = defineStruct("fuse_init_out", {
  major: u32,
  minor: u32,
  max_readahead: u32,
  flags: u32,
  max_background: u16,
  congestion_threshold: u16,
  max_write: u32,
  time_gran: u32,
  max_pages: u16,
  map_alignment: u16,
  flags2: u32,
  unused: array(pad32, 7),
});

export const cuse_init_in = defineStruct("cuse_init_in", { major: u32, minor: u32, unused: pad32, flags: u32 });

export const cuse_init_out = defineStruct("cuse_init_out", {
  major: u32,
  minor: u32,
  unused: pad32,
  flags: u32,
  max_read: u32,
  max_write: u32,
  dev_major: u32, // chardev major
  dev_minor: u32, // chardev minor
  spare: array(pad32, 10),
});

export const fuse_interrupt_in = defineStruct("fuse_interrupt_in", { unique: u64 });

export const fuse_bmap_in = defineStruct("fuse_bmap_in", { block: u64, blocksize: u32, padding: pad32 });

export const fuse_bmap_out = defineStruct("fuse_bmap_out", { block: u64 });

export const fuse_ioctl_in = defineStruct("fuse_ioctl_in", {
  fh: u64,
  flags: u32,
  cmd: u32,
  arg: u64,
  in_size: u32,
  out_size: u32,
});

export const fuse_ioctl_iovec = defineStruct("fuse_ioctl_iovec", { base: u64, len: u64 });

export const fuse_ioctl_out = defineStruct("fuse_ioctl_out", { result: i32, flags: u32, in_iovs: u32, out_iovs: u32 });

export const fuse_poll_in = defineStruct("fuse_poll_in", { fh: u64, kh: u64, flags: u32, events: u32 });

export const fuse_poll_out = defineStruct("fuse_poll_out", { revents: u32, padding: pad32 });

export const fuse_notify_poll_wakeup_out = defineStruct("fuse_notify_poll_wakeup_out", { kh: u64 });

export const fuse_fallocate_in = defineStruct("fuse_fallocate_in", {
  fh: u64,
  offset: u64,
  length: u64,
  mode: u32,
  padding: pad32,
});

export const fuse_in_header = defineStruct("fuse_in_header", {
  len: u32,
  opcode: u32,
  unique: u64,
  nodeid: u64,
  uid: u32,
  gid: u32,
  pid: u32,
  total_extlen: u16, // length of extensions in 8-byte units
  padding: pad16,
});

export const fuse_out_header = defineStruct("fuse_out_header", { len: u32, error: i32, unique: u64 });

export const fuse_dirent = defineStruct("fuse_dirent", {
  ino: u64,
  off: u64,
  namelen: u32,
  type: u32,
  name: flexible("char"),
});

export const fuse_direntplus = defineStruct("fuse_direntplus", { entry_out: fuse_entry_out, dirent: fuse_dirent });

export const fuse_notify_inval_inode_out = defineStruct("fuse_notify_inval_inode_out", { ino: u64, off: i64, len: i64 });

export const fuse_notify_inval_entry_out = defineStruct("fuse_notify_inval_entry_out", {
  parent: u64,
  namelen: u32,
  flags: u32,
});

export const fuse_notify_delete_out = defineStruct("fuse_notify_delete_out", {
  parent: u64,
  child: u64,
  namelen: u32,
  padding: pad32,
});

export const fuse_notify_store_out = defineStruct("fuse_notify_store_out", {
  nodeid: u64,
  offset: u64,
  size: u32,
  padding: pad32,
});

export const fuse_notify_retrieve_out = defineStruct("fuse_notify_retrieve_out", {
  notify_unique: u64,
  nodeid: u64,
  offset: u64,
  size: u32,
  padding: pad32,
});

/** Matches the size of fuse_write_in. */
export const fuse_notify_retrieve_in = defineStruct("fuse_notify_retrieve_in", {
  dummy1: pad64,
  offset: u64,
  size: u32,
  dummy2: pad32,
  dummy3: pad64,
  dummy4: pad64,
});

export const fuse_lseek_in = defineStruct("fuse_lseek_in", { fh: u64, offset: u64, whence: u32, padding: pad32 });

export const fuse_lseek_out = defineStruct("fuse_lseek_out", { offset: u64 });

export const fuse_copy_file_range_in = defineStruct("fuse_copy_file_range_in", {
  fh_in: u64,
  off_in: u64,
  nodeid_out: u64,
  fh_out: u64,
  off_out: u64,
  len: u64,
  flags: u64,
});

export const fuse_setupmapping_in = defineStruct("fuse_setupmapping_in", {
  fh: u64, // an already open handle
  foffset: u64, // offset into the file to start the mapping
  len: u64, // length of mapping required
  flags: u64, // FUSE_SETUPMAPPING_FLAG_*
  moffset: u64, // offset in the memory window
});

/** Followed by `count` fuse_removemapping_one. */
export const fuse_removemapping_in = defineStruct("fuse_removemapping_in", { count: u32 });

export const fuse_removemapping_one = defineStruct("fuse_removemapping_one", {
  moffset: u64, // offset into the DAX window to start the unmapping
  len: u64,
});

/** PAGE_SIZE / sizeof(struct fuse_removemapping_one): one page of entries per request (x86 pages are 4 KiB). */
export const FUSE_REMOVEMAPPING_MAX_ENTRY = 4096 / fuse_removemapping_one.SIZE;

export const fuse_syncfs_in = defineStruct("fuse_syncfs_in", { padding: pad64 });

/** One security context: followed by its NUL-terminated name, then `size` bytes of label. */
export const fuse_secctx = defineStruct("fuse_secctx", { size: u32, padding: pad32 });

/** How many fuse_secctx follow and the total size of them all, this header included. */
export const fuse_secctx_header = defineStruct("fuse_secctx_header", { size: u32, nr_secctx: u32 });

/** Extension header: `size` includes this header; `type` > FUSE_MAX_NR_SECCTX (see FuseExtType). */
export const fuse_ext_header = defineStruct("fuse_ext_header", { size: u32, type: u32 });

/** The FUSE_EXT_GROUPS extension (Linux 6.3, same protocol minor): followed by `nr_groups` gids. */
export const fuse_supp_groups = defineStruct("fuse_supp_groups", { nr_groups: u32, groups: flexible("uint32_t") });

// ---------------------------------------------------------------------------------------------
// decode / encode

const zero = (c: IntCType): number | bigint => (c === "uint64_t" || c === "int64_t" ? 0n : 0);

function readScalar(view: DataView, pos: number, c: IntCType): number | bigint {
  switch (c) {
    case "uint16_t":
      return view.getUint16(pos, true);
    case "uint32_t":
      return view.getUint32(pos, true);
    case "int32_t":
      return view.getInt32(pos, true);
    case "uint64_t":
      return view.getBigUint64(pos, true);
    case "int64_t":
      return view.getBigInt64(pos, true);
  }
}

function decodeMembers(spec: StructSpec, view: DataView, base: number, limit: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { name, field: f, offset } of spec.members) {
    const pos = base + offset;
    if (isLayout(f)) {
      out[name] = decodeMembers(f[SPEC], view, pos, limit);
    } else if (f.kind === "scalar") {
      out[name] = pos + f.size <= limit ? readScalar(view, pos, f.ctype) : zero(f.ctype);
    } else if (f.kind === "array") {
      const a: (number | bigint)[] = [];
      for (let i = 0, p = pos; i < f.count; i++, p += f.size) {
        a.push(p + f.size <= limit ? readScalar(view, p, f.ctype) : zero(f.ctype));
      }
      out[name] = a;
    }
    // A flexible array has no value here: its length is in another field (namelen, nr_groups).
  }
  return out;
}

/**
 * Reads a struct at `view[offset]` into a plain object. `size` (default SIZE) is how many bytes of
 * it the peer sent: an older minor's shorter struct (FUSE_COMPAT_*) reads as if zero-extended. Throws
 * RangeError if the bytes are not in the view, so check lengths against the request first.
 */
export function decode<F extends Fields>(
  layout: Layout<F>,
  view: DataView,
  offset: number,
  size: number = layout.SIZE,
): Decoded<F> {
  return decodeMembers(layout[SPEC], view, offset, offset + size) as Decoded<F>;
}

const fitsInt = (v: unknown, bits: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= -(2 ** (bits - 1)) && v < 2 ** bits;

/**
 * Stores an integer field; false if `v` is not one whose reading in the field is exact (a number beyond
 * 2^53 has already lost bits: refusing it is the only way to notice). DataView's setters keep the low
 * bits, so a negative value stores its two's complement. Numbers are stored as two 32-bit halves, so the
 * hot path (attributes, entries) makes no BigInt.
 */
function writeScalar(view: DataView, pos: number, c: IntCType, v: unknown): boolean {
  switch (c) {
    case "uint16_t":
      if (!fitsInt(v, 16)) return false;
      view.setUint16(pos, v, true);
      return true;
    case "uint32_t":
    case "int32_t":
      if (!fitsInt(v, 32)) return false;
      view.setUint32(pos, v, true);
      return true;
    case "uint64_t":
    case "int64_t":
      if (typeof v === "number" && Number.isSafeInteger(v)) {
        view.setUint32(pos, v >>> 0, true);
        view.setUint32(pos + 4, Math.floor(v / 2 ** 32) >>> 0, true);
        return true;
      }
      if (typeof v !== "bigint" || v < -(1n << 63n) || v >= 1n << 64n) return false;
      view.setBigUint64(pos, v, true);
      return true;
  }
}

function badValue(where: string, v: unknown, c: IntCType): RangeError {
  const what = c === "uint16_t" ? "a 16-bit integer" : c.includes("64") ? "a 64-bit integer (bigint or safe integer)" : "a 32-bit integer";
  return new RangeError(`${where}: ${String(v)} is not ${what}`);
}

function encodeMembers(
  spec: StructSpec,
  view: DataView,
  base: number,
  value: Readonly<Record<string, unknown>>,
  limit: number,
): void {
  for (const { name, field: f, offset } of spec.members) {
    const pos = base + offset;
    const v = value[name];
    if (isLayout(f)) {
      if (typeof v !== "object" || v === null) throw new TypeError(`${spec.name}.${name}: expected a struct ${f[SPEC].name}`);
      encodeMembers(f[SPEC], view, pos, v as Readonly<Record<string, unknown>>, limit);
    } else if (f.kind === "scalar") {
      const x = v === undefined && f.reserved ? 0 : v;
      if (pos + f.size <= limit && !writeScalar(view, pos, f.ctype, x)) throw badValue(`${spec.name}.${name}`, x, f.ctype);
    } else if (f.kind === "array") {
      if (v !== undefined || !f.reserved) {
        if (!Array.isArray(v) || v.length !== f.count) throw new TypeError(`${spec.name}.${name}: expected ${f.count} elements`);
      }
      for (let i = 0, p = pos; i < f.count && p + f.size <= limit; i++, p += f.size) {
        const x: unknown = Array.isArray(v) ? v[i] : 0;
        if (!writeScalar(view, p, f.ctype, x)) throw badValue(`${spec.name}.${name}[${i}]`, x, f.ctype);
      }
    }
  }
}

/**
 * Writes a struct at `view[offset]`. Reserved fields (padding, dummy, unused, spare) default to 0.
 * fuse.h structs have no implicit padding, so all `size` bytes (default SIZE) are written and no
 * stale memory reaches the guest; a smaller `size` writes the prefix an older minor expects
 * (FUSE_COMPAT_*). A value that does not fit its field throws, possibly after earlier fields were written.
 */
export function encode<F extends Fields>(
  layout: Layout<F>,
  view: DataView,
  offset: number,
  value: EncodeInput<F>,
  size: number = layout.SIZE,
): void {
  encodeMembers(layout[SPEC], view, offset, value as Readonly<Record<string, unknown>>, offset + size);
}

// ---------------------------------------------------------------------------------------------
// INIT flags

/**
 * The 64-bit INIT flags of a fuse_init_in/out, as the kernel combines them: flags2 counts only
 * when flags has FUSE_INIT_EXT (before 7.36 it is absent and decodes as 0 anyway).
 */
export function initFlags(flags: number, flags2: number): bigint {
  const lo = BigInt(flags >>> 0);
  return lo & FUSE_INIT_EXT ? lo | (BigInt(flags2 >>> 0) << 32n) : lo;
}

/** The flags/flags2 words of 64-bit INIT flags. The kernel reads flags2 only if FUSE_INIT_EXT is set. */
export function splitInitFlags(flags: bigint): { flags: number; flags2: number } {
  return { flags: Number(BigInt.asUintN(32, flags)), flags2: Number(BigInt.asUintN(32, flags >> 32n)) };
}

// ---------------------------------------------------------------------------------------------
// Names and directory entries

/**
 * Length of the NUL-terminated name at bytes[start..end), which is how the kernel sends every name
 * (LOOKUP's name, RENAME's "old\0new\0", xattr names), or a negative errno: -ENAMETOOLONG if more
 * than `max` bytes precede the NUL, -EINVAL if the range ends first. Allocates nothing.
 */
export function nameLength(bytes: Uint8Array, start: number, end: number, max: number = NAME_MAX): number {
  const stop = Math.min(end, bytes.length, start + max + 1);
  for (let i = start; i < stop; i++) {
    if (bytes[i] === 0) return i - start;
  }
  return stop === start + max + 1 ? -Errno.ENAMETOOLONG : -Errno.EINVAL;
}

// fatal: distinct byte strings must not decode to one name; ignoreBOM: a leading U+FEFF is part of it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The NUL-terminated UTF-8 name at bytes[start..end) and the offset just past its NUL (where a
 * second name starts), or a negative errno as `nameLength` gives, or -EILSEQ for invalid UTF-8.
 * Empty, ".", ".." and names with '/' are returned as they are: see `isPlainName`.
 */
export function decodeName(
  bytes: Uint8Array,
  start: number,
  end: number,
  max: number = NAME_MAX,
): { name: string; next: number } | number {
  const len = nameLength(bytes, start, end, max);
  if (len < 0) return len;
  try {
    return { name: utf8.decode(bytes.subarray(start, start + len)), next: start + len + 1 };
  } catch {
    return -Errno.EILSEQ;
  }
}

/** True for a name that can be a directory entry: not empty, ".", ".." and without '/'. */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/");
}

/** Rounds a variable-length record (dirent, extension) up to 64 bits. */
export const FUSE_REC_ALIGN = (x: number): number => alignUp(x, 8);
export const FUSE_DIRENT_ALIGN = FUSE_REC_ALIGN;
/** offsetof(struct fuse_dirent, name) */
export const FUSE_NAME_OFFSET = fuse_dirent.name;
/** offsetof(struct fuse_direntplus, dirent.name) */
export const FUSE_NAME_OFFSET_DIRENTPLUS = fuse_direntplus.dirent + fuse_dirent.name;

/** FUSE_DIRENT_SIZE for a name of `nameLen` bytes: the record including its padding. */
export function direntSize(nameLen: number): number {
  return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nameLen);
}

/** FUSE_DIRENTPLUS_SIZE for a name of `nameLen` bytes. */
export function direntplusSize(nameLen: number): number {
  return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + nameLen);
}
