// A FUSE message's bytes, field by field, for the inspector's hex dump: fuse_in_header or fuse_out_header,
// the opcode's struct with fuse.h's member names (offsets from abi.ts's layouts), then names or payload.
// Pure and total like describe.ts: `bytes` may be only the first part of the message (the inspector keeps
// a bounded prefix) or short and hostile; what is not there is listed as such, nothing throws.
import * as abi from "./abi.ts";
import { FuseOpcode as O, fuseOpcodeName, isLayout, structSpec, type Field, type Layout } from "./abi.ts";
import { formatMode, formatOpenFlags, replyErrorName } from "./describe.ts";

/** One run of bytes of a message and what it means. */
export interface ByteField {
  offset: number;
  size: number;
  /** fuse.h's struct ("fuse_in_header"), or what the bytes are: "name", "payload". */
  struct: string;
  /** The member, dotted inside nested structs ("attr.mode"); the name's role ("newname"); "" for a payload. */
  field: string;
  /** Decoded: numbers in decimal, flags and modes by name, names as text. */
  value: string;
}

const INIT_FLAG_NAMES = [
  "FUSE_ASYNC_READ", "FUSE_POSIX_LOCKS", "FUSE_FILE_OPS", "FUSE_ATOMIC_O_TRUNC", "FUSE_EXPORT_SUPPORT", "FUSE_BIG_WRITES",
  "FUSE_DONT_MASK", "FUSE_SPLICE_WRITE", "FUSE_SPLICE_MOVE", "FUSE_SPLICE_READ", "FUSE_FLOCK_LOCKS", "FUSE_HAS_IOCTL_DIR",
  "FUSE_AUTO_INVAL_DATA", "FUSE_DO_READDIRPLUS", "FUSE_READDIRPLUS_AUTO", "FUSE_ASYNC_DIO", "FUSE_WRITEBACK_CACHE",
  "FUSE_NO_OPEN_SUPPORT", "FUSE_PARALLEL_DIROPS", "FUSE_HANDLE_KILLPRIV", "FUSE_POSIX_ACL", "FUSE_ABORT_ERROR",
  "FUSE_MAX_PAGES", "FUSE_CACHE_SYMLINKS", "FUSE_NO_OPENDIR_SUPPORT", "FUSE_EXPLICIT_INVAL_DATA", "FUSE_MAP_ALIGNMENT",
  "FUSE_SUBMOUNTS", "FUSE_HANDLE_KILLPRIV_V2", "FUSE_SETXATTR_EXT", "FUSE_INIT_EXT", "FUSE_INIT_RESERVED",
  "FUSE_SECURITY_CTX", "FUSE_HAS_INODE_DAX", "FUSE_CREATE_SUPP_GROUP", "FUSE_HAS_EXPIRE_ONLY",
] as const;
const INIT_FLAGS: readonly [bigint, string][] = INIT_FLAG_NAMES.map((n) => [abi[n], n]);

/** INIT's flags (bits 0..31) or flags2 (bits 32..63) by name. */
export function formatInitFlags(word: number, high: boolean): string {
  const shift = high ? 32n : 0n;
  let rest = BigInt(word >>> 0) << shift;
  const names: string[] = [];
  for (const [bit, name] of INIT_FLAGS) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push("0x" + (rest >> shift).toString(16));
  return names.length ? names.join("|") : "0";
}

type Format = (v: number) => string;
const octal: Format = (v) => "0" + v.toString(8);
/** Members whose number means more by name, keyed "struct.field". */
const FORMATS: Record<string, Format> = {
  "fuse_in_header.opcode": (v) => `${v} ${fuseOpcodeName(v) ?? "(unknown)"}`,
  "fuse_out_header.error": (v) => (v === 0 ? "0" : `${v} ${replyErrorName(v)}`),
  "fuse_init_in.flags": (v) => formatInitFlags(v, false),
  "fuse_init_in.flags2": (v) => formatInitFlags(v, true),
  "fuse_init_out.flags": (v) => formatInitFlags(v, false),
  "fuse_init_out.flags2": (v) => formatInitFlags(v, true),
  "fuse_open_in.flags": formatOpenFlags,
  "fuse_create_in.flags": formatOpenFlags,
  "fuse_release_in.flags": formatOpenFlags,
  "fuse_read_in.flags": formatOpenFlags,
  "fuse_write_in.flags": formatOpenFlags,
  "fuse_create_in.mode": formatMode,
  "fuse_mknod_in.mode": formatMode,
  "fuse_mkdir_in.mode": formatMode,
  "fuse_setattr_in.mode": formatMode,
  "fuse_attr.mode": formatMode,
  "fuse_create_in.umask": octal,
  "fuse_mknod_in.umask": octal,
  "fuse_mkdir_in.umask": octal,
};

/** What follows the opcode's struct in a request: NUL-terminated names, then (WRITE, SETXATTR …) a payload. */
interface RequestShape {
  struct?: Layout;
  /** fuse.h sends a shorter struct here (SETXATTR without FUSE_SETXATTR_EXT). */
  size?: number;
  names?: readonly string[];
}
const NAME = ["name"] as const;
const TWO_NAMES = ["oldname", "newname"] as const;
const REQUESTS: Partial<Record<number, RequestShape>> = {
  [O.FUSE_LOOKUP]: { names: NAME },
  [O.FUSE_FORGET]: { struct: abi.fuse_forget_in },
  [O.FUSE_GETATTR]: { struct: abi.fuse_getattr_in },
  [O.FUSE_SETATTR]: { struct: abi.fuse_setattr_in },
  [O.FUSE_SYMLINK]: { names: ["name", "target"] },
  [O.FUSE_MKNOD]: { struct: abi.fuse_mknod_in, names: NAME },
  [O.FUSE_MKDIR]: { struct: abi.fuse_mkdir_in, names: NAME },
  [O.FUSE_UNLINK]: { names: NAME },
  [O.FUSE_RMDIR]: { names: NAME },
  [O.FUSE_RENAME]: { struct: abi.fuse_rename_in, names: TWO_NAMES },
  [O.FUSE_LINK]: { struct: abi.fuse_link_in, names: NAME },
  [O.FUSE_OPEN]: { struct: abi.fuse_open_in },
  [O.FUSE_READ]: { struct: abi.fuse_read_in },
  [O.FUSE_WRITE]: { struct: abi.fuse_write_in },
  [O.FUSE_RELEASE]: { struct: abi.fuse_release_in },
  [O.FUSE_FSYNC]: { struct: abi.fuse_fsync_in },
  [O.FUSE_SETXATTR]: { struct: abi.fuse_setxattr_in, size: abi.FUSE_COMPAT_SETXATTR_IN_SIZE, names: NAME },
  [O.FUSE_GETXATTR]: { struct: abi.fuse_getxattr_in, names: NAME },
  [O.FUSE_LISTXATTR]: { struct: abi.fuse_getxattr_in },
  [O.FUSE_REMOVEXATTR]: { names: NAME },
  [O.FUSE_FLUSH]: { struct: abi.fuse_flush_in },
  [O.FUSE_INIT]: { struct: abi.fuse_init_in },
  [O.FUSE_OPENDIR]: { struct: abi.fuse_open_in },
  [O.FUSE_READDIR]: { struct: abi.fuse_read_in },
  [O.FUSE_RELEASEDIR]: { struct: abi.fuse_release_in },
  [O.FUSE_FSYNCDIR]: { struct: abi.fuse_fsync_in },
  [O.FUSE_GETLK]: { struct: abi.fuse_lk_in },
  [O.FUSE_SETLK]: { struct: abi.fuse_lk_in },
  [O.FUSE_SETLKW]: { struct: abi.fuse_lk_in },
  [O.FUSE_ACCESS]: { struct: abi.fuse_access_in },
  [O.FUSE_CREATE]: { struct: abi.fuse_create_in, names: NAME },
  [O.FUSE_INTERRUPT]: { struct: abi.fuse_interrupt_in },
  [O.FUSE_BMAP]: { struct: abi.fuse_bmap_in },
  [O.FUSE_IOCTL]: { struct: abi.fuse_ioctl_in },
  [O.FUSE_POLL]: { struct: abi.fuse_poll_in },
  [O.FUSE_BATCH_FORGET]: { struct: abi.fuse_batch_forget_in },
  [O.FUSE_FALLOCATE]: { struct: abi.fuse_fallocate_in },
  [O.FUSE_READDIRPLUS]: { struct: abi.fuse_read_in },
  [O.FUSE_RENAME2]: { struct: abi.fuse_rename2_in, names: TWO_NAMES },
  [O.FUSE_LSEEK]: { struct: abi.fuse_lseek_in },
  [O.FUSE_COPY_FILE_RANGE]: { struct: abi.fuse_copy_file_range_in },
  [O.FUSE_SETUPMAPPING]: { struct: abi.fuse_setupmapping_in },
  [O.FUSE_REMOVEMAPPING]: { struct: abi.fuse_removemapping_in },
  [O.FUSE_SYNCFS]: { struct: abi.fuse_syncfs_in },
  [O.FUSE_TMPFILE]: { struct: abi.fuse_create_in },
};

/** The structs of a successful reply, in order; the rest is payload (READ's data, READDIR's dirents). */
const REPLIES: Partial<Record<number, readonly Layout[]>> = {
  [O.FUSE_LOOKUP]: [abi.fuse_entry_out],
  [O.FUSE_MKNOD]: [abi.fuse_entry_out],
  [O.FUSE_MKDIR]: [abi.fuse_entry_out],
  [O.FUSE_SYMLINK]: [abi.fuse_entry_out],
  [O.FUSE_LINK]: [abi.fuse_entry_out],
  [O.FUSE_GETATTR]: [abi.fuse_attr_out],
  [O.FUSE_SETATTR]: [abi.fuse_attr_out],
  [O.FUSE_OPEN]: [abi.fuse_open_out],
  [O.FUSE_OPENDIR]: [abi.fuse_open_out],
  [O.FUSE_CREATE]: [abi.fuse_entry_out, abi.fuse_open_out],
  [O.FUSE_TMPFILE]: [abi.fuse_entry_out, abi.fuse_open_out],
  [O.FUSE_WRITE]: [abi.fuse_write_out],
  [O.FUSE_COPY_FILE_RANGE]: [abi.fuse_write_out],
  [O.FUSE_STATFS]: [abi.fuse_statfs_out],
  [O.FUSE_INIT]: [abi.fuse_init_out],
  [O.FUSE_GETLK]: [abi.fuse_lk_out],
  [O.FUSE_BMAP]: [abi.fuse_bmap_out],
  [O.FUSE_IOCTL]: [abi.fuse_ioctl_out],
  [O.FUSE_POLL]: [abi.fuse_poll_out],
  [O.FUSE_LSEEK]: [abi.fuse_lseek_out],
};

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Collects fields over the kept bytes of a message `length` bytes long. */
class Annotator {
  readonly fields: ByteField[] = [];
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly length: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Lists `layout`'s members at `at` (no further than `size` bytes of it, nor past the message), nested
   * structs' as `outer`'s dotted members; returns the end.
   */
  struct(layout: Layout, at: number, size = layout.SIZE, prefix = "", outer = structSpec(layout).name): number {
    const spec = structSpec(layout);
    const end = Math.min(at + size, this.length);
    for (const m of spec.members) {
      const start = at + m.offset;
      const width = fieldSize(m.field);
      if (width === 0 || start + width > end) continue;
      const field = prefix + m.name;
      if (isLayout(m.field)) this.struct(m.field, start, width, `${field}.`, outer);
      else this.fields.push({ offset: start, size: width, struct: outer, field, value: this.value(m.field, start, `${spec.name}.${m.name}`) });
    }
    return end;
  }

  /** NUL-terminated names from `at`, one per role; returns the offset after the last. */
  names(roles: readonly string[], at: number): number {
    for (const role of roles) {
      if (at >= this.length) break;
      const nul = this.bytes.indexOf(0, at);
      const end = nul < 0 ? Math.min(this.length, this.bytes.length) : nul + 1;
      this.fields.push({ offset: at, size: end - at, struct: "name", field: role, value: JSON.stringify(utf8.decode(this.bytes.subarray(at, nul < 0 ? end : nul))) });
      at = end;
    }
    return at;
  }

  /** Whatever follows, as one payload field. */
  payload(at: number): void {
    if (at >= this.length) return;
    const size = this.length - at;
    const kept = Math.max(0, Math.min(this.bytes.length, this.length) - at);
    this.fields.push({ offset: at, size, struct: "payload", field: "", value: kept < size ? `${size} bytes (the first ${kept} kept)` : `${size} bytes` });
  }

  private value(f: Field, at: number, key: string): string {
    if (at + fieldSize(f) > this.bytes.length) return "(not kept)";
    if (isLayout(f) || f.kind === "flexible") return "";
    const one = (p: number): number | bigint => {
      switch (f.ctype) {
        case "uint16_t":
          return this.view.getUint16(p, true);
        case "uint32_t":
          return this.view.getUint32(p, true);
        case "int32_t":
          return this.view.getInt32(p, true);
        case "uint64_t":
          return this.view.getBigUint64(p, true);
        case "int64_t":
          return this.view.getBigInt64(p, true);
      }
    };
    if (f.kind === "array") {
      const values = Array.from({ length: f.count }, (_, i) => one(at + i * f.size));
      return values.every((v) => v === 0 || v === 0n) ? `0 × ${f.count}` : values.join(", ");
    }
    const v = one(at);
    const fmt = FORMATS[key];
    return fmt && typeof v === "number" ? fmt(v) : String(v);
  }
}

function fieldSize(f: Field): number {
  if (isLayout(f)) return f.SIZE;
  return f.kind === "array" ? f.size * f.count : f.kind === "flexible" ? 0 : f.size;
}

/** A request as the guest sent it: `bytes` from fuse_in_header on, of a message `length` bytes long. */
export function annotateRequest(bytes: Uint8Array, length = bytes.length): ByteField[] {
  const a = new Annotator(bytes, length);
  let at = a.struct(abi.fuse_in_header, 0);
  if (bytes.length < abi.fuse_in_header.SIZE) return a.fields;
  const shape = REQUESTS[new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(abi.fuse_in_header.opcode, true)] ?? {};
  if (shape.struct) at = a.struct(shape.struct, at, shape.size ?? shape.struct.SIZE);
  if (shape.names) at = a.names(shape.names, at);
  a.payload(at);
  return a.fields;
}

/**
 * A reply as the server wrote it: fuse_out_header, the structs of `request`'s opcode unless it failed,
 * payload. `request` is the request's bytes from fuse_in_header on.
 */
export function annotateReply(request: Uint8Array, bytes: Uint8Array, length = bytes.length): ByteField[] {
  const a = new Annotator(bytes, length);
  let at = a.struct(abi.fuse_out_header, 0);
  const u32 = (b: Uint8Array, at: number): number | undefined => (b.length >= at + 4 ? new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true) : undefined);
  const opcode = u32(request, abi.fuse_in_header.opcode);
  const failed = bytes.length >= abi.fuse_out_header.SIZE && new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(abi.fuse_out_header.error, true) !== 0;
  // GETXATTR/LISTXATTR answer a size query (size 0) with fuse_getxattr_out, else with the value itself.
  const sizeQuery = (opcode === O.FUSE_GETXATTR || opcode === O.FUSE_LISTXATTR) && u32(request, abi.fuse_in_header.SIZE + abi.fuse_getxattr_in.size) === 0;
  const structs = failed || opcode === undefined ? [] : sizeQuery ? [abi.fuse_getxattr_out] : (REPLIES[opcode] ?? []);
  for (const s of structs) at = a.struct(s, at);
  a.payload(at);
  return a.fields;
}
