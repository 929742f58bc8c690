// FUSE requests as virtiofs.ko would send them, built from the ABI's struct layouts with values a hostile
// guest likes (edges, huge sizes, node ids and handles it holds or never held, names with '/', '..', NUL),
// then sometimes mutated (header length, node id, opcode, truncated or padded arguments, flipped bytes).
import {
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_ROOT_ID,
  FUSE_SETUPMAPPING_FLAG_READ,
  FUSE_SETUPMAPPING_FLAG_WRITE,
  FuseOpcode as O,
  fuse_access_in,
  fuse_batch_forget_in,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_forget_in,
  fuse_forget_one,
  fuse_fsync_in,
  fuse_getattr_in,
  fuse_getxattr_in,
  fuse_in_header,
  fuse_init_in,
  fuse_link_in,
  fuse_lseek_in,
  fuse_mkdir_in,
  fuse_mknod_in,
  fuse_open_in,
  fuse_read_in,
  fuse_release_in,
  fuse_removemapping_in,
  fuse_removemapping_one,
  fuse_rename2_in,
  fuse_rename_in,
  fuse_setattr_in,
  fuse_setupmapping_in,
  fuse_setxattr_in,
  fuse_syncfs_in,
  fuse_write_in,
  structSpec,
  type Layout,
} from "../src/fuse/abi.ts";
import { FIXTURE_NAMES } from "./backends.ts";
import type { Rng } from "./rng.ts";

/** What the guest has learned from replies so far: node ids and handles to send back (or misuse). */
export interface Known {
  /** Node ids by what they name (from the attributes in entry replies). */
  files: bigint[];
  dirs: bigint[];
  others: bigint[];
  /** Handles from OPEN and CREATE, and from OPENDIR. */
  fhs: bigint[];
  dhs: bigint[];
  /** DAX window bytes, 0 without one. */
  window: number;
}

export const knowNothing = (window: number): Known => ({ files: [], dirs: [BigInt(FUSE_ROOT_ID)], others: [], fhs: [], dhs: [], window });

/** What an opcode's node id and handles are, when sent as the kernel would. */
type Aim = "file" | "dir" | "any";
const DIR_OPS = new Set<number>([O.FUSE_LOOKUP, O.FUSE_MKNOD, O.FUSE_MKDIR, O.FUSE_SYMLINK, O.FUSE_UNLINK, O.FUSE_RMDIR, O.FUSE_RENAME, O.FUSE_RENAME2, O.FUSE_LINK, O.FUSE_OPENDIR, O.FUSE_READDIR, O.FUSE_READDIRPLUS, O.FUSE_RELEASEDIR, O.FUSE_FSYNCDIR, O.FUSE_CREATE, O.FUSE_TMPFILE]);
const FILE_OPS = new Set<number>([O.FUSE_OPEN, O.FUSE_READ, O.FUSE_WRITE, O.FUSE_RELEASE, O.FUSE_FSYNC, O.FUSE_FLUSH, O.FUSE_FALLOCATE, O.FUSE_LSEEK, O.FUSE_COPY_FILE_RANGE, O.FUSE_SETUPMAPPING, O.FUSE_REMOVEMAPPING, O.FUSE_SETATTR, O.FUSE_READLINK]);
const aimOf = (opcode: number): Aim => (DIR_OPS.has(opcode) ? "dir" : FILE_OPS.has(opcode) ? "file" : "any");
/** What the request being built aims its node ids and handles at. */
let aim: Aim = "any";

export interface Request {
  opcode: number;
  /** fuse_in_header + arguments. */
  bytes: Uint8Array;
  /** Queue 0 (hiprio: FORGET, BATCH_FORGET) or 1. */
  queue: number;
  /** Lengths of the device-writable buffers. */
  replyLens: number[];
}

const MiB = 1 << 20;
const HUGE = [0, 1, 7, 8, 4095, 4096, 4097, 65535, 65536, 131072, MiB - 1, MiB, MiB + 1, 16 * MiB, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53];
const WIDE = [2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 4096n];
const te = new TextEncoder();

const HOSTILE_NAMES: readonly (string | Uint8Array)[] = [".", "..", "a/b", "../outside", "/", "", "..\u0000x", "na\u0000me", "x".repeat(255), "x".repeat(256), ".virtiofs-web", ".virtiofs-web-exchange-0", "tmpfile-1", Uint8Array.of(0xff, 0xfe), Uint8Array.of(0xed, 0xa0, 0x80), "\u00e9t\u00e9"];
const TARGETS = ["hello", "../outside/secret", "/etc/passwd", "..", "", "a/../../..", "x".repeat(5000), "dir/up"];

function interesting(rng: Rng, bits: 16 | 32 | 64): bigint {
  const mask = (1n << BigInt(bits)) - 1n;
  const r = rng.int(10);
  const v = r < 5 ? BigInt(rng.pick(HUGE)) : r < 6 ? rng.pick(WIDE) : r < 8 ? BigInt(rng.int(64)) : rng.u64();
  return v & mask;
}

export function nameBytes(rng: Rng): Uint8Array {
  const r = rng.int(10);
  const pick = r < 6 ? rng.pick(FIXTURE_NAMES) : r < 8 ? rng.pick(["new", "x", "f0", "f1", "d0"]) : rng.pick(HOSTILE_NAMES);
  const bytes = typeof pick === "string" ? te.encode(pick) : pick;
  // Mostly NUL-terminated, as the kernel sends them.
  return rng.chance(0.92) ? Uint8Array.of(...bytes, 0) : bytes;
}

function node(rng: Rng, k: Known): bigint {
  const all = [...k.files, ...k.dirs, ...k.others];
  const aimed = aim === "file" ? k.files : aim === "dir" ? k.dirs : all;
  if (rng.chance(0.75) && aimed.length) return rng.pick(aimed);
  return rng.chance(0.7) && all.length ? rng.pick(all) : rng.chance(0.5) ? BigInt(FUSE_ROOT_ID) : interesting(rng, 64);
}

function fh(rng: Rng, k: Known): bigint {
  const aimed = aim === "dir" ? k.dhs : k.fhs;
  if (rng.chance(0.8) && aimed.length) return rng.pick(aimed);
  const all = [...k.fhs, ...k.dhs];
  return rng.chance(0.5) && all.length ? rng.pick(all) : rng.chance(0.3) ? 0n : interesting(rng, 64);
}

/** A value for a field, by what its fuse.h name says it holds. */
function fieldValue(rng: Rng, k: Known, name: string, bits: 16 | 32 | 64): bigint {
  const mask = (1n << BigInt(bits)) - 1n;
  if (/^(fh|fh_in|fh_out)$/.test(name)) return fh(rng, k) & mask;
  if (name === "oldnodeid") return (rng.chance(0.7) && k.files.length ? rng.pick(k.files) : node(rng, k)) & mask;
  if (name === "newdir") return (rng.chance(0.7) ? rng.pick(k.dirs) : node(rng, k)) & mask;
  if (/nodeid/.test(name)) return node(rng, k) & mask;
  if (name === "moffset") return BigInt(rng.chance(0.7) ? rng.int(k.window / 4096 + 2) * 4096 : Number(interesting(rng, 32))) & mask;
  if (/off|size|len|count|block/.test(name)) return rng.chance(0.6) ? BigInt(rng.pick([0, 1, 100, 4096, 8192, 65536, 2 * MiB, 70_000])) & mask : interesting(rng, bits);
  if (name === "mode") return BigInt(rng.pick([0o100644, 0o040755, 0o120777, 0o020644, 0o010644, 0o140644, 0o755, 0o644, 0o4755, rng.u32()])) & mask;
  if (/flags|valid|mask|whence/.test(name)) return rng.chance(0.25) ? BigInt(rng.u32() & rng.u32()) & mask : BigInt(rng.pick([0, 1, 2, 3, 0o1002, 0o102, 0o2001])) & mask;
  return interesting(rng, bits);
}

/** A struct's bytes with every scalar field chosen for its name; nested structs and arrays random or zero. */
export function struct(rng: Rng, k: Known, layout: Layout, size = layout.SIZE): Uint8Array {
  const out = new Uint8Array(layout.SIZE);
  const v = new DataView(out.buffer);
  for (const m of structSpec(layout).members) {
    const f = m.field;
    if ("kind" in f && f.kind === "scalar") {
      const bits = (f.size * 8) as 16 | 32 | 64;
      const val = f.reserved && rng.chance(0.9) ? 0n : fieldValue(rng, k, m.name, bits);
      if (f.size === 8) v.setBigUint64(m.offset, val, true);
      else if (f.size === 4) v.setUint32(m.offset, Number(val), true);
      else v.setUint16(m.offset, Number(val), true);
    } else if (rng.chance(0.2)) out.set(rng.bytes(Math.min(64, layout.SIZE - m.offset)).subarray(0, Math.max(0, layout.SIZE - m.offset)), m.offset);
  }
  return out.subarray(0, size);
}

const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

type Build = (rng: Rng, k: Known) => Uint8Array;
const s = (layout: Layout): Build => (rng, k) => struct(rng, k, layout);
const withName = (layout: Layout | null, names = 1): Build => (rng, k) => cat(layout ? struct(rng, k, layout) : new Uint8Array(0), ...Array.from({ length: names }, () => nameBytes(rng)));

/** A header whose first u32 counts the items after it (mostly right, sometimes not), then up to max - 1 items. */
const counted = (head: Layout, item: Layout, max: number): Build => (rng, k) => {
  const n = rng.int(max);
  const h = struct(rng, k, head);
  if (rng.chance(0.7)) new DataView(h.buffer).setUint32(0, n, true);
  return cat(h, ...Array.from({ length: n }, () => struct(rng, k, item)));
};

const ARGS: Partial<Record<number, Build>> = {
  [O.FUSE_LOOKUP]: withName(null),
  [O.FUSE_FORGET]: s(fuse_forget_in),
  [O.FUSE_BATCH_FORGET]: counted(fuse_batch_forget_in, fuse_forget_one, 5),
  [O.FUSE_GETATTR]: s(fuse_getattr_in),
  [O.FUSE_SETATTR]: s(fuse_setattr_in),
  [O.FUSE_READLINK]: () => new Uint8Array(0),
  [O.FUSE_SYMLINK]: (rng) => cat(nameBytes(rng), te.encode(rng.pick(TARGETS)), Uint8Array.of(0)),
  [O.FUSE_MKNOD]: withName(fuse_mknod_in),
  [O.FUSE_MKDIR]: withName(fuse_mkdir_in),
  [O.FUSE_UNLINK]: withName(null),
  [O.FUSE_RMDIR]: withName(null),
  [O.FUSE_RENAME]: withName(fuse_rename_in, 2),
  [O.FUSE_RENAME2]: withName(fuse_rename2_in, 2),
  [O.FUSE_LINK]: withName(fuse_link_in),
  [O.FUSE_OPEN]: s(fuse_open_in),
  [O.FUSE_OPENDIR]: s(fuse_open_in),
  [O.FUSE_READ]: s(fuse_read_in),
  [O.FUSE_READDIR]: s(fuse_read_in),
  [O.FUSE_READDIRPLUS]: s(fuse_read_in),
  [O.FUSE_WRITE]: (rng, k) => {
    const data = rng.bytes(rng.pick([0, 1, 100, 4096, 5000, 65536, rng.int(300_000)]));
    const w = struct(rng, k, fuse_write_in);
    if (rng.chance(0.8)) new DataView(w.buffer).setUint32(fuse_write_in.size, data.length, true);
    return cat(w, data);
  },
  [O.FUSE_STATFS]: () => new Uint8Array(0),
  [O.FUSE_RELEASE]: s(fuse_release_in),
  [O.FUSE_RELEASEDIR]: s(fuse_release_in),
  [O.FUSE_FSYNC]: s(fuse_fsync_in),
  [O.FUSE_FSYNCDIR]: s(fuse_fsync_in),
  [O.FUSE_FLUSH]: s(fuse_flush_in),
  [O.FUSE_SETXATTR]: (rng, k) => {
    const value = rng.bytes(rng.pick([0, 1, 10, 4096, 65536, 65537]));
    const size = rng.chance(0.5) ? 8 : fuse_setxattr_in.SIZE;
    const x = struct(rng, k, fuse_setxattr_in, size);
    if (rng.chance(0.8)) new DataView(x.buffer, x.byteOffset).setUint32(fuse_setxattr_in.size, value.length, true);
    return cat(x, te.encode(rng.pick(["user.a", "user.b", "trusted.x", "security.capability", "system.posix_acl_access", "", "user." + "n".repeat(300)])), Uint8Array.of(0), value);
  },
  [O.FUSE_GETXATTR]: (rng, k) => cat(struct(rng, k, fuse_getxattr_in), te.encode(rng.pick(["user.a", "user.b", "security.capability", ""])), Uint8Array.of(0)),
  [O.FUSE_LISTXATTR]: s(fuse_getxattr_in),
  [O.FUSE_REMOVEXATTR]: (rng) => cat(te.encode(rng.pick(["user.a", "user.b", "nope"])), Uint8Array.of(0)),
  [O.FUSE_INIT]: (rng, k) => init(rng, k),
  [O.FUSE_DESTROY]: () => new Uint8Array(0),
  [O.FUSE_ACCESS]: s(fuse_access_in),
  [O.FUSE_CREATE]: withName(fuse_create_in),
  [O.FUSE_TMPFILE]: s(fuse_create_in),
  [O.FUSE_FALLOCATE]: s(fuse_fallocate_in),
  [O.FUSE_LSEEK]: s(fuse_lseek_in),
  [O.FUSE_COPY_FILE_RANGE]: s(fuse_copy_file_range_in),
  [O.FUSE_SETUPMAPPING]: (rng, k) => {
    const a = struct(rng, k, fuse_setupmapping_in);
    if (rng.chance(0.6)) {
      // As fs/fuse/dax.c maps: page-aligned file and window offsets, a length inside the window.
      const v = new DataView(a.buffer);
      v.setBigUint64(fuse_setupmapping_in.foffset, BigInt(4096 * rng.int(24)), true);
      v.setBigUint64(fuse_setupmapping_in.len, BigInt(rng.chance(0.5) ? 4096 * rng.range(1, 64) : 2 * MiB), true);
      v.setBigUint64(fuse_setupmapping_in.moffset, BigInt(4096 * rng.int(Math.max(1, k.window / 4096))), true);
      v.setBigUint64(fuse_setupmapping_in.flags, rng.pick([FUSE_SETUPMAPPING_FLAG_READ, FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE, FUSE_SETUPMAPPING_FLAG_WRITE]), true);
    }
    return a;
  },
  [O.FUSE_REMOVEMAPPING]: counted(fuse_removemapping_in, fuse_removemapping_one, 4),
  [O.FUSE_SYNCFS]: s(fuse_syncfs_in),
};

const COMMON_OPS = [O.FUSE_LOOKUP, O.FUSE_LOOKUP, O.FUSE_LOOKUP, O.FUSE_GETATTR, O.FUSE_OPEN, O.FUSE_OPEN, O.FUSE_OPENDIR, O.FUSE_READ, O.FUSE_READ, O.FUSE_WRITE, O.FUSE_WRITE, O.FUSE_READDIR, O.FUSE_READDIRPLUS, O.FUSE_READDIRPLUS, O.FUSE_RELEASE, O.FUSE_RELEASEDIR, O.FUSE_CREATE, O.FUSE_SETATTR, O.FUSE_FORGET, O.FUSE_FORGET];
const OTHER_OPS = Object.keys(ARGS).map(Number);
const UNKNOWN_OPS = [O.FUSE_INTERRUPT, O.FUSE_BMAP, O.FUSE_IOCTL, O.FUSE_POLL, O.FUSE_GETLK, O.FUSE_SETLK, O.FUSE_SETLKW, O.FUSE_NOTIFY_REPLY, O.CUSE_INIT, 0, 52, 0xffffffff];

/** FUSE_INIT as Linux 6.1 sends it, with its flags sometimes anything at all. */
export function init(rng: Rng, k: Known): Uint8Array {
  const a = struct(rng, k, fuse_init_in);
  const v = new DataView(a.buffer, a.byteOffset);
  if (rng.chance(0.9)) {
    v.setUint32(fuse_init_in.major, FUSE_KERNEL_VERSION, true);
    v.setUint32(fuse_init_in.minor, rng.chance(0.8) ? FUSE_KERNEL_MINOR_VERSION : rng.int(40), true);
    v.setUint32(fuse_init_in.max_readahead, 128 * 1024, true);
  }
  return a;
}

export function header(opcode: number, unique: bigint, nodeid: bigint, argLen: number): Uint8Array {
  const h = new Uint8Array(fuse_in_header.SIZE);
  const v = new DataView(h.buffer);
  v.setUint32(fuse_in_header.len, fuse_in_header.SIZE + argLen, true);
  v.setUint32(fuse_in_header.opcode, opcode, true);
  v.setBigUint64(fuse_in_header.unique, unique, true);
  v.setBigUint64(fuse_in_header.nodeid, nodeid, true);
  return h;
}

/** One request, well formed or nearly. */
export function request(rng: Rng, k: Known, unique: bigint): Request {
  const r = rng.int(100);
  let opcode = r < 55 ? rng.pick(COMMON_OPS) : r < 97 ? rng.pick(OTHER_OPS) : rng.pick(UNKNOWN_OPS);
  if (k.window && rng.chance(0.15)) opcode = rng.pick([O.FUSE_SETUPMAPPING, O.FUSE_SETUPMAPPING, O.FUSE_REMOVEMAPPING]);
  if (opcode === O.FUSE_DESTROY || opcode === O.FUSE_INIT) opcode = rng.chance(0.1) ? opcode : O.FUSE_LOOKUP;
  aim = aimOf(opcode);
  let args = ARGS[opcode]?.(rng, k) ?? rng.bytes(rng.int(64));
  let h = header(opcode, unique, node(rng, k), args.length);
  const hv = new DataView(h.buffer);
  if (rng.chance(0.25)) {
    switch (rng.int(7)) {
      case 0: hv.setUint32(fuse_in_header.len, Number(interesting(rng, 32)), true); break;
      case 1: hv.setUint32(fuse_in_header.len, hv.getUint32(0, true) + rng.range(-9, 9), true); break;
      case 2: hv.setBigUint64(fuse_in_header.nodeid, interesting(rng, 64), true); break;
      case 3: args = args.subarray(0, rng.int(args.length + 1)); h = header(opcode, unique, hv.getBigUint64(fuse_in_header.nodeid, true), args.length); break;
      case 4: args = cat(args, rng.bytes(rng.int(100))); h = header(opcode, unique, hv.getBigUint64(fuse_in_header.nodeid, true), args.length); break;
      case 5: if (args.length) { const at = rng.int(args.length); args[at] = args[at]! ^ (1 << rng.int(8)); } break;
      case 6: hv.setUint16(fuse_in_header.total_extlen, rng.u32() & 0xffff, true); hv.setUint32(fuse_in_header.uid, rng.u32(), true); break;
    }
  }
  const queue = opcode === O.FUSE_FORGET || opcode === O.FUSE_BATCH_FORGET ? (rng.chance(0.9) ? 0 : 1) : rng.chance(0.03) ? 0 : 1;
  const reads = opcode === O.FUSE_READ || opcode === O.FUSE_READDIR || opcode === O.FUSE_READDIRPLUS;
  const readSize = reads && args.length >= fuse_read_in.SIZE ? new DataView(args.buffer, args.byteOffset, args.byteLength).getUint32(fuse_read_in.size, true) : 0;
  const room = rng.int(10);
  const normal = 16 + Math.min(Math.max(readSize, 4096), 1 << 20);
  const replyLens = queue === 0 && rng.chance(0.9) ? [] : room < 7 ? [normal] : room < 8 ? [rng.pick([0, 8, 16, 16 + 64, 16 + 127, 16 + 128])] : room < 9 ? [16, rng.int(normal)] : [rng.int(normal)];
  return { opcode, bytes: cat(h, args), queue, replyLens };
}
