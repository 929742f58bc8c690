// Human-readable FUSE requests for the protocol inspector: the opcode's fuse.h name and its key
// arguments (the name for LOOKUP/CREATE/MKDIR, fh/offset/size for READ/WRITE, flags for OPEN …), decoded
// from the bytes after fuse_in_header. Pure and total: a short or hostile argument block yields what can
// be read plus a note, never an exception.
import { FATTR_ATIME, FATTR_ATIME_NOW, FATTR_CTIME, FATTR_FH, FATTR_GID, FATTR_KILL_SUIDGID, FATTR_LOCKOWNER, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW, FATTR_SIZE, FATTR_UID, FUSE_COMPAT_SETXATTR_IN_SIZE, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_RELEASE_FLOCK_UNLOCK, FUSE_RELEASE_FLUSH, FuseOpcode as O, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, fuse_access_in, fuse_batch_forget_in, fuse_copy_file_range_in, fuse_create_in, fuse_fallocate_in, fuse_flush_in, fuse_forget_in, fuse_fsync_in, fuse_getattr_in, fuse_getxattr_in, fuse_init_in, fuse_link_in, fuse_lseek_in, fuse_mkdir_in, fuse_mknod_in, fuse_open_in, fuse_read_in, fuse_release_in, fuse_removemapping_in, fuse_rename2_in, fuse_rename_in, fuse_setattr_in, fuse_setupmapping_in, fuse_write_in, fuseOpcodeName } from "./abi.ts";
import { errnoName } from "../vfs/errno.ts";

/** A decoded argument: numbers stay numbers (for matching), everything else is display text. */
export type ArgValue = string | number;

export interface DescribedRequest {
  /** fuse.h's name ("FUSE_LOOKUP"), or "opcode N" for one it does not define. */
  op: string;
  /** Key arguments in wire order. 64-bit values beyond 2^53 are hex strings. */
  args: Record<string, ArgValue>;
  /** The arguments on one line: `name="hello.txt"`, `fh=3 offset=0 size=4096`. */
  text: string;
}

/** fuse_out_header.error as text: "OK" for 0, "ENOENT" for -2. */
export function replyErrorName(error: number): string {
  return error === 0 ? "OK" : errnoName(Math.abs(error));
}

// open(2) flags as the i386 guest sends them (asm-generic values).
const OPEN_FLAGS: readonly [number, string][] = [
  [0o100, "O_CREAT"],
  [0o200, "O_EXCL"],
  [0o400, "O_NOCTTY"],
  [0o1000, "O_TRUNC"],
  [0o2000, "O_APPEND"],
  [0o4000, "O_NONBLOCK"],
  [0o10000, "O_DSYNC"],
  [0o20000, "O_ASYNC"],
  [0o40000, "O_DIRECT"],
  [0o100000, "O_LARGEFILE"],
  [0o200000, "O_DIRECTORY"],
  [0o400000, "O_NOFOLLOW"],
  [0o1000000, "O_NOATIME"],
  [0o2000000, "O_CLOEXEC"],
  [0o4000000, "__O_SYNC"],
  [0o10000000, "O_PATH"],
  [0o20000000, "__O_TMPFILE"],
];
const ACCESS_MODES = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"];

/** "O_RDONLY|O_LARGEFILE"; unknown bits are shown in octal. */
export function formatOpenFlags(flags: number): string {
  return bitNames(flags >>> 0, OPEN_FLAGS, ACCESS_MODES[flags & 3]!, 8);
}

const FILE_TYPES = new Map<number, string>([
  [0o140000, "S_IFSOCK"],
  [0o120000, "S_IFLNK"],
  [0o100000, "S_IFREG"],
  [0o060000, "S_IFBLK"],
  [0o040000, "S_IFDIR"],
  [0o020000, "S_IFCHR"],
  [0o010000, "S_IFIFO"],
]);

/** "S_IFREG|0644", or just "0755" for a mode without a file type (mkdir sends those). */
export function formatMode(mode: number): string {
  const type = FILE_TYPES.get(mode & 0o170000);
  const perm = "0" + (mode & 0o7777).toString(8).padStart(3, "0");
  return type ? `${type}|${perm}` : perm;
}

function bitNames(value: number, names: readonly [number, string][], base: string | undefined, radix: number): string {
  const parts = base === undefined ? [] : [base];
  let rest = base === undefined ? value : value & ~3;
  for (const [bit, name] of names) {
    if ((rest & bit) !== 0) {
      parts.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) parts.push(radix === 8 ? "0" + (rest >>> 0).toString(8) : "0x" + (rest >>> 0).toString(16));
  return parts.length ? parts.join("|") : "0";
}

const SETATTR_VALID: readonly [number, string][] = [
  [FATTR_MODE, "MODE"],
  [FATTR_UID, "UID"],
  [FATTR_GID, "GID"],
  [FATTR_SIZE, "SIZE"],
  [FATTR_ATIME, "ATIME"],
  [FATTR_MTIME, "MTIME"],
  [FATTR_FH, "FH"],
  [FATTR_ATIME_NOW, "ATIME_NOW"],
  [FATTR_MTIME_NOW, "MTIME_NOW"],
  [FATTR_LOCKOWNER, "LOCKOWNER"],
  [FATTR_CTIME, "CTIME"],
  [FATTR_KILL_SUIDGID, "KILL_SUIDGID"],
];
const RELEASE_FLAGS: readonly [number, string][] = [
  [FUSE_RELEASE_FLUSH, "FLUSH"],
  [FUSE_RELEASE_FLOCK_UNLOCK, "FLOCK_UNLOCK"],
];
const RENAME_FLAGS: readonly [number, string][] = [
  [RENAME_NOREPLACE, "RENAME_NOREPLACE"],
  [RENAME_EXCHANGE, "RENAME_EXCHANGE"],
  [RENAME_WHITEOUT, "RENAME_WHITEOUT"],
];
const ACCESS_MASK: readonly [number, string][] = [
  [4, "R_OK"],
  [2, "W_OK"],
  [1, "X_OK"],
];
const WHENCE = ["SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"];
const FALLOC_MODES: readonly [number, string][] = [
  [0x01, "KEEP_SIZE"],
  [0x02, "PUNCH_HOLE"],
  [0x08, "COLLAPSE_RANGE"],
  [0x10, "ZERO_RANGE"],
  [0x20, "INSERT_RANGE"],
];

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Reads fields of one request's argument block; records a note instead of reading past its end. */
class ArgReader {
  readonly args: Record<string, ArgValue> = {};
  private readonly view: DataView;
  short = false;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fits(at: number, size: number): boolean {
    if (at + size <= this.bytes.length) return true;
    this.short = true;
    return false;
  }

  u32(at: number): number | undefined {
    return this.fits(at, 4) ? this.view.getUint32(at, true) : undefined;
  }

  u64(at: number): number | string | undefined {
    if (!this.fits(at, 8)) return undefined;
    const v = this.view.getBigUint64(at, true);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : "0x" + v.toString(16);
  }

  /** Sets `key` to the field's value, formatted by `fmt` when given; absent if the bytes are not there. */
  put(key: string, value: number | string | undefined, fmt?: (v: number) => string): void {
    if (value === undefined) return;
    this.args[key] = fmt && typeof value === "number" ? fmt(value) : value;
  }

  /** The NUL-terminated string at `at` (quoted for display) and the offset after its NUL. */
  name(key: string, at: number): number {
    if (at >= this.bytes.length) {
      this.short = true;
      return at;
    }
    let end = this.bytes.indexOf(0, at);
    if (end < 0) {
      this.short = true;
      end = this.bytes.length;
    }
    this.args[key] = utf8.decode(this.bytes.subarray(at, end));
    return end + 1;
  }
}

type Decoder = (r: ArgReader) => void;

const fhOffsetSize = (r: ArgReader): void => {
  r.put("fh", r.u64(fuse_read_in.fh));
  r.put("offset", r.u64(fuse_read_in.offset));
  r.put("size", r.u32(fuse_read_in.size));
};
const release = (r: ArgReader): void => {
  r.put("fh", r.u64(fuse_release_in.fh));
  r.put("flags", r.u32(fuse_release_in.flags), formatOpenFlags);
  const rf = r.u32(fuse_release_in.release_flags);
  if (rf) r.put("release_flags", rf, (v) => bitNames(v, RELEASE_FLAGS, undefined, 16));
};
const open = (r: ArgReader): void => {
  r.put("flags", r.u32(fuse_open_in.flags), formatOpenFlags);
};
const fsync = (r: ArgReader): void => {
  r.put("fh", r.u64(fuse_fsync_in.fh));
  const f = r.u32(fuse_fsync_in.fsync_flags);
  if (f !== undefined) r.put("datasync", (f & FUSE_FSYNC_FDATASYNC) !== 0 ? "yes" : "no");
};
const nameOnly = (r: ArgReader): void => {
  r.name("name", 0);
};
const rename = (r: ArgReader, size: number): void => {
  r.put("newdir", r.u64(fuse_rename_in.newdir));
  r.name("newname", r.name("oldname", size));
};

const DECODERS: Partial<Record<number, Decoder>> = {
  [O.FUSE_LOOKUP]: nameOnly,
  [O.FUSE_FORGET]: (r) => r.put("nlookup", r.u64(fuse_forget_in.nlookup)),
  [O.FUSE_BATCH_FORGET]: (r) => r.put("count", r.u32(fuse_batch_forget_in.count)),
  [O.FUSE_GETATTR]: (r) => {
    const f = r.u32(fuse_getattr_in.getattr_flags);
    if (f !== undefined && f & FUSE_GETATTR_FH) r.put("fh", r.u64(fuse_getattr_in.fh));
  },
  [O.FUSE_SETATTR]: (r) => {
    const f = fuse_setattr_in;
    const valid = r.u32(f.valid);
    if (valid === undefined) return;
    r.put("valid", bitNames(valid, SETATTR_VALID, undefined, 16));
    if (valid & FATTR_MODE) r.put("mode", r.u32(f.mode), formatMode);
    if (valid & FATTR_UID) r.put("uid", r.u32(f.uid));
    if (valid & FATTR_GID) r.put("gid", r.u32(f.gid));
    if (valid & FATTR_SIZE) r.put("size", r.u64(f.size));
    if (valid & FATTR_FH) r.put("fh", r.u64(f.fh));
  },
  [O.FUSE_SYMLINK]: (r) => {
    r.name("target", r.name("name", 0));
  },
  [O.FUSE_MKNOD]: (r) => {
    r.name("name", fuse_mknod_in.SIZE);
    r.put("mode", r.u32(fuse_mknod_in.mode), formatMode);
    r.put("rdev", r.u32(fuse_mknod_in.rdev));
    r.put("umask", r.u32(fuse_mknod_in.umask), (v) => "0" + v.toString(8));
  },
  [O.FUSE_MKDIR]: (r) => {
    r.name("name", fuse_mkdir_in.SIZE);
    r.put("mode", r.u32(fuse_mkdir_in.mode), formatMode);
    r.put("umask", r.u32(fuse_mkdir_in.umask), (v) => "0" + v.toString(8));
  },
  [O.FUSE_UNLINK]: nameOnly,
  [O.FUSE_RMDIR]: nameOnly,
  [O.FUSE_RENAME]: (r) => rename(r, fuse_rename_in.SIZE),
  [O.FUSE_RENAME2]: (r) => {
    rename(r, fuse_rename2_in.SIZE);
    const f = r.u32(fuse_rename2_in.flags);
    if (f) r.put("flags", f, (v) => bitNames(v, RENAME_FLAGS, undefined, 16));
  },
  [O.FUSE_LINK]: (r) => {
    r.put("oldnodeid", r.u64(fuse_link_in.oldnodeid));
    r.name("name", fuse_link_in.SIZE);
  },
  [O.FUSE_OPEN]: open,
  [O.FUSE_OPENDIR]: open,
  [O.FUSE_READ]: fhOffsetSize,
  [O.FUSE_READDIR]: fhOffsetSize,
  [O.FUSE_READDIRPLUS]: fhOffsetSize,
  [O.FUSE_WRITE]: (r) => {
    r.put("fh", r.u64(fuse_write_in.fh));
    r.put("offset", r.u64(fuse_write_in.offset));
    r.put("size", r.u32(fuse_write_in.size));
  },
  [O.FUSE_RELEASE]: release,
  [O.FUSE_RELEASEDIR]: release,
  [O.FUSE_FSYNC]: fsync,
  [O.FUSE_FSYNCDIR]: fsync,
  [O.FUSE_FLUSH]: (r) => r.put("fh", r.u64(fuse_flush_in.fh)),
  [O.FUSE_SETXATTR]: (r) => {
    // Linux 6.1 sends the short fuse_setxattr_in unless FUSE_SETXATTR_EXT was negotiated (it is not).
    r.name("name", FUSE_COMPAT_SETXATTR_IN_SIZE);
    r.put("size", r.u32(0));
    r.put("flags", r.u32(4));
  },
  [O.FUSE_GETXATTR]: (r) => {
    r.name("name", fuse_getxattr_in.SIZE);
    r.put("size", r.u32(fuse_getxattr_in.size));
  },
  [O.FUSE_LISTXATTR]: (r) => r.put("size", r.u32(fuse_getxattr_in.size)),
  [O.FUSE_REMOVEXATTR]: nameOnly,
  [O.FUSE_INIT]: (r) => {
    const major = r.u32(fuse_init_in.major);
    const minor = r.u32(fuse_init_in.minor);
    if (major !== undefined && minor !== undefined) r.put("version", `${major}.${minor}`);
    r.put("max_readahead", r.u32(fuse_init_in.max_readahead));
  },
  [O.FUSE_ACCESS]: (r) => r.put("mask", r.u32(fuse_access_in.mask), (v) => (v === 0 ? "F_OK" : bitNames(v, ACCESS_MASK, undefined, 16))),
  [O.FUSE_CREATE]: (r) => {
    r.name("name", fuse_create_in.SIZE);
    r.put("flags", r.u32(fuse_create_in.flags), formatOpenFlags);
    r.put("mode", r.u32(fuse_create_in.mode), formatMode);
    r.put("umask", r.u32(fuse_create_in.umask), (v) => "0" + v.toString(8));
  },
  [O.FUSE_TMPFILE]: (r) => {
    r.put("flags", r.u32(fuse_create_in.flags), formatOpenFlags);
    r.put("mode", r.u32(fuse_create_in.mode), formatMode);
  },
  [O.FUSE_FALLOCATE]: (r) => {
    const f = fuse_fallocate_in;
    r.put("fh", r.u64(f.fh));
    r.put("offset", r.u64(f.offset));
    r.put("length", r.u64(f.length));
    r.put("mode", r.u32(f.mode), (v) => bitNames(v, FALLOC_MODES, undefined, 16));
  },
  [O.FUSE_LSEEK]: (r) => {
    r.put("fh", r.u64(fuse_lseek_in.fh));
    r.put("offset", r.u64(fuse_lseek_in.offset));
    r.put("whence", r.u32(fuse_lseek_in.whence), (v) => WHENCE[v] ?? String(v));
  },
  [O.FUSE_COPY_FILE_RANGE]: (r) => {
    const f = fuse_copy_file_range_in;
    r.put("fh_in", r.u64(f.fh_in));
    r.put("off_in", r.u64(f.off_in));
    r.put("nodeid_out", r.u64(f.nodeid_out));
    r.put("fh_out", r.u64(f.fh_out));
    r.put("off_out", r.u64(f.off_out));
    r.put("len", r.u64(f.len));
  },
  [O.FUSE_SETUPMAPPING]: (r) => {
    const f = fuse_setupmapping_in;
    r.put("fh", r.u64(f.fh));
    r.put("foffset", r.u64(f.foffset));
    r.put("len", r.u64(f.len));
    r.put("moffset", r.u64(f.moffset));
  },
  [O.FUSE_REMOVEMAPPING]: (r) => r.put("count", r.u32(fuse_removemapping_in.count)),
};

/** Decodes a request's arguments (the bytes after fuse_in_header) for display. */
export function describeRequest(opcode: number, args: Uint8Array): DescribedRequest {
  const r = new ArgReader(args);
  const name = fuseOpcodeName(opcode);
  const decoder = DECODERS[opcode];
  if (decoder) decoder(r);
  else if (name === undefined && args.length > 0) r.args.bytes = args.length; // all one can say of an unknown opcode
  const text = Object.entries(r.args)
    .map(([k, v]) => (k === "name" || k === "oldname" || k === "newname" || k === "target" ? `${k}=${JSON.stringify(v)}` : `${k}=${v}`))
    .join(" ");
  return { op: name ?? `opcode ${opcode}`, args: r.args, text: r.short ? `${text}${text ? " " : ""}(arguments cut short)` : text };
}
