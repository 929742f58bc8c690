// src/fuse/abi.ts against Linux 6.1's fuse.h as gcc lays it out (test/fixtures/gen-fuse-layout.sh).
import { describe, expect, it } from "vitest";
import fixture from "../fixtures/fuse-layout.json";
import * as abi from "../../src/fuse/abi.ts";
import { FUSE_COMPAT_ENTRY_OUT_SIZE, FUSE_COMPAT_SETXATTR_IN_SIZE, FUSE_HAS_INODE_DAX, FUSE_INIT_EXT, FUSE_NAME_OFFSET, FUSE_NAME_OFFSET_DIRENTPLUS, FUSE_REC_ALIGN, FUSE_SECURITY_CTX, FuseExtType, FuseNotifyCode, FuseOpcode, decode, decodeName, direntSize, direntplusSize, encode, fuseOpcodeName, fuse_dirent, fuse_entry_out, fuse_in_header, fuse_init_in, fuse_open_out, fuse_out_header, fuse_setxattr_in, initFlags, isLayout, isPlainName, nameLength, splitInitFlags, structSpec, type Field, type Layout, type StructInput, type StructValue } from "../../src/fuse/abi.ts";
import { Errno } from "../../src/vfs/errno.ts";

interface FixtureAbi {
  size: number;
  align: number;
  offsets: Record<string, number>;
}
interface Fixture {
  structs: Record<
    string,
    { fields: { name: string; ctype: string; count?: number; flexible?: boolean }[]; m64: FixtureAbi; m32: FixtureAbi }
  >;
  enums: Record<string, Record<string, number>>;
  constants: Record<string, number>;
  errno: Record<string, number>;
  direntSize: Record<string, number>;
  direntplusSize: Record<string, number>;
}
const fx: Fixture = fixture;

// fuse.h #defines deliberately not exported: ioctls of /dev/fuse, which virtio-fs does not have.
const NOT_EXPORTED = new Set(["FUSE_DEV_IOC_MAGIC", "FUSE_DEV_IOC_CLONE"]);
/** #defines that use PAGE_SIZE, which no userspace header has (gen-fuse-layout.sh skips them). */
const DERIVED: Record<string, number> = { FUSE_REMOVEMAPPING_MAX_ENTRY: 4096 / 16 };

const layouts = new Map<string, Layout>();
for (const [name, value] of Object.entries(abi)) if (isLayout(value)) layouts.set(name, value);
const structNames = Object.keys(fx.structs);

const ctypeOf = (f: Field): string => (isLayout(f) ? `struct ${structSpec(f).name}` : f.ctype);
const sizeOf = (f: Field): number =>
  isLayout(f) ? f.SIZE : f.kind === "array" ? f.size * f.count : f.kind === "flexible" ? 0 : f.size;

function buffer(n: number, fill = 0): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(n).fill(fill);
  return { bytes, view: new DataView(bytes.buffer) };
}

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

describe("struct layouts match gcc", () => {
  it("every struct of fuse.h is exported under its C name, and only those", () => {
    expect([...layouts.keys()].sort()).toEqual([...structNames].sort());
    for (const [name, layout] of layouts) expect(structSpec(layout).name).toBe(name);
  });

  it.each(structNames)("%s: fields, types, SIZE and offsets for -m64 and -m32", (name) => {
    const layout = layouts.get(name)!;
    const c = fx.structs[name]!;
    const members = structSpec(layout).members;
    expect(members.map((m) => m.name)).toEqual(c.fields.map((f) => f.name));
    members.forEach((m, i) => {
      const want = c.fields[i]!;
      expect(ctypeOf(m.field), `${name}.${m.name}`).toBe(want.ctype);
      expect(m.field.kind === "array" ? m.field.count : undefined).toBe(want.count);
      expect(m.field.kind === "flexible" || undefined).toBe(want.flexible);
    });
    for (const gcc of [c.m64, c.m32]) {
      expect(layout.SIZE).toBe(gcc.size);
      expect(Object.fromEntries(members.map((m) => [m.name, layout[m.name]]))).toEqual(gcc.offsets);
    }
    expect(structSpec(layout).align).toBe(c.m64.align);
  });

  it.each(structNames)("%s: i386 and x86-64 agree, and there is no implicit padding", (name) => {
    const { m64, m32 } = fx.structs[name]!;
    expect(m32.size).toBe(m64.size);
    expect(m32.offsets).toEqual(m64.offsets);
    // Fields tile the struct exactly, so encode() writes every byte of it.
    const layout = layouts.get(name)!;
    let end = 0;
    for (const m of structSpec(layout).members) {
      expect(m.offset, `${name}.${m.name}`).toBe(end);
      end += sizeOf(m.field);
    }
    expect(end).toBe(layout.SIZE);
  });

  it("offset tables are frozen", () => {
    expect(Object.isFrozen(fuse_in_header)).toBe(true);
    expect(fuse_in_header.len).toBe(0);
    expect(fuse_in_header.unique).toBe(8);
    expect(fuse_in_header.total_extlen).toBe(36);
    expect(fuse_in_header.SIZE).toBe(40);
  });
});

describe("constants and enums match the headers", () => {
  it("every #define of fuse.h (and RENAME_*, NAME_MAX, XATTR_*) is exported with its value", () => {
    const exported = abi as Record<string, unknown>;
    for (const [name, c] of Object.entries(fx.constants)) {
      if (NOT_EXPORTED.has(name)) continue;
      const v = exported[name];
      if (typeof v === "bigint") {
        // fuse.h's (1 << 31) is INT_MIN in C; the flag it names is bit 31.
        expect(v, name).toBe(c < 0 ? BigInt.asUintN(32, BigInt(c)) : BigInt(c));
      } else {
        expect(v, name).toBe(c);
      }
    }
  });

  it("every exported constant comes from the headers", () => {
    for (const [name, v] of Object.entries(abi)) {
      if (/^[A-Z][A-Z0-9_]+$/.test(name) && (typeof v === "number" || typeof v === "bigint") && !(name in DERIVED)) {
        expect(fx.constants, name).toHaveProperty(name);
      }
    }
  });

  it("constants fuse.h derives from PAGE_SIZE have their value for 4 KiB pages", () => {
    for (const [name, value] of Object.entries(DERIVED)) expect((abi as Record<string, unknown>)[name], name).toBe(value);
  });

  it("64-bit quantities are bigint: INIT flags and FUSE_SETUPMAPPING_FLAG_*", () => {
    expect(FUSE_SECURITY_CTX).toBe(1n << 32n);
    expect(typeof abi.FUSE_ASYNC_READ).toBe("bigint");
    expect(typeof abi.FUSE_SETUPMAPPING_FLAG_READ).toBe("bigint");
    expect(typeof abi.FOPEN_KEEP_CACHE).toBe("number");
  });

  it("enum fuse_opcode is complete, with a reverse lookup", () => {
    expect(FuseOpcode).toEqual(fx.enums["fuse_opcode"]);
    for (const [name, op] of Object.entries(FuseOpcode)) expect(fuseOpcodeName(op)).toBe(name);
    for (const op of [0, 7, 19, 52, 4095, -1, 1.5]) expect(fuseOpcodeName(op)).toBeUndefined();
    expect(Object.isFrozen(FuseOpcode)).toBe(true);
  });

  it("enum fuse_notify_code and enum fuse_ext_type", () => {
    expect(FuseNotifyCode).toEqual(fx.enums["fuse_notify_code"]);
    expect(FuseExtType).toEqual(fx.enums["fuse_ext_type"]);
  });

  it("errno values are Linux's", () => {
    for (const [name, v] of Object.entries(Errno)) expect(v, name).toBe(fx.errno[name]);
    for (const name of [
      "EPERM", "ENOENT", "EINTR", "EIO", "ENXIO", "E2BIG", "EBADF", "EAGAIN", "ENOMEM", "EACCES", "EEXIST",
      "EXDEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC",
      "ESPIPE", "EROFS", "EMLINK", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY",
      "ELOOP", "ENODATA", "EOVERFLOW", "EOPNOTSUPP", "ESTALE", "ECANCELED",
    ]) {
      expect(Errno, name).toHaveProperty(name);
    }
  });
});

describe("decode", () => {
  it("reads a fuse_in_header written by hand, at an unaligned offset", () => {
    const bytes = new Uint8Array([
      0xee, 0xee, 0xee, // preceding bytes
      ...le32(0x51), // len
      ...le32(1), // opcode: FUSE_LOOKUP
      0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, // unique 0x0123456789abcdef
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // nodeid: all 64 bits
      ...le32(1000), // uid
      ...le32(100), // gid
      ...le32(4242), // pid
      0x02, 0x00, // total_extlen
      0x00, 0x00, // padding
    ]);
    const h = decode(fuse_in_header, new DataView(bytes.buffer), 3);
    expect(h).toEqual({
      len: 0x51,
      opcode: FuseOpcode.FUSE_LOOKUP,
      unique: 0x0123456789abcdefn,
      nodeid: 0xffffffffffffffffn,
      uid: 1000,
      gid: 100,
      pid: 4242,
      total_extlen: 2,
      padding: 0,
    });
    // The hot path reads in place with the offsets.
    expect(new DataView(bytes.buffer).getUint32(3 + fuse_in_header.opcode, true)).toBe(FuseOpcode.FUSE_LOOKUP);
  });

  it("reads a fuse_init_in written by hand, and its pre-7.36 16-byte form", () => {
    const flags = 0x73fffffb;
    const bytes = new Uint8Array([
      ...le32(7),
      ...le32(38),
      ...le32(0x20000),
      ...le32(flags),
      ...le32(0x0b), // flags2: SECURITY_CTX, HAS_INODE_DAX, HAS_EXPIRE_ONLY
      ...new Array<number>(44).fill(0),
    ]);
    expect(bytes.length).toBe(fuse_init_in.SIZE);
    const view = new DataView(bytes.buffer);
    const init = decode(fuse_init_in, view, 0);
    expect(init).toEqual({
      major: 7,
      minor: 38,
      max_readahead: 0x20000,
      flags,
      flags2: 0x0b,
      unused: new Array<number>(11).fill(0),
    });
    expect(initFlags(init.flags, init.flags2) & FUSE_HAS_INODE_DAX).toBe(FUSE_HAS_INODE_DAX);
    const old = decode(fuse_init_in, view, 0, 16);
    expect(old.flags).toBe(flags);
    expect(old.flags2).toBe(0);
  });

  it("zero-extends a struct the peer sent short (FUSE_COMPAT_*)", () => {
    const { bytes, view } = buffer(16, 0x41); // the xattr name follows the 8-byte form
    view.setUint32(0, 5, true);
    view.setUint32(4, 1, true);
    expect(decode(fuse_setxattr_in, view, 0, FUSE_COMPAT_SETXATTR_IN_SIZE)).toEqual({
      size: 5,
      flags: 1,
      setxattr_flags: 0,
      padding: 0,
    });
    expect(bytes[8]).toBe(0x41);
  });

  it("throws instead of reading past the view", () => {
    const { view } = buffer(fuse_in_header.SIZE - 1);
    expect(() => decode(fuse_in_header, view, 0)).toThrow(RangeError);
  });

  it("has precise types: 64-bit fields are bigint, flexible arrays are absent", () => {
    const { view } = buffer(fuse_dirent.SIZE);
    const d: StructValue<typeof fuse_dirent> = decode(fuse_dirent, view, 0);
    const ino: bigint = d.ino;
    const namelen: number = d.namelen;
    // @ts-expect-error the name is read with namelen, not by decode
    expect(d.name).toBeUndefined();
    expect([ino, namelen]).toEqual([0n, 0]);
  });
});

type Pick = (ctype: string) => number | bigint;

/** A value for every field of a struct, from `pick`. */
function sample(layout: Layout, pick: Pick): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { name, field: f } of structSpec(layout).members) {
    if (isLayout(f)) out[name] = sample(f, pick);
    else if (f.kind === "scalar") out[name] = pick(f.ctype);
    else if (f.kind === "array") out[name] = Array.from({ length: f.count }, () => pick(f.ctype));
  }
  return out;
}

const wide = (ctype: string): boolean => ctype === "uint64_t" || ctype === "int64_t";
/** Each field distinct, with high bits set (u64 above 2^53), so a misplaced field shows. */
function distinct(): Pick {
  let k = 0;
  const table: Record<string, (k: number) => number | bigint> = {
    uint16_t: (k) => 0xff00 + k,
    uint32_t: (k) => 0xfffe0000 + k,
    int32_t: (k) => -k,
    uint64_t: (k) => 0xfedcba9800000000n + BigInt(k),
    int64_t: (k) => -(1n << 62n) - BigInt(k),
  };
  return (ctype) => table[ctype]!(++k);
}
const extremes: Pick = (ctype) =>
  ({ uint16_t: 0xffff, uint32_t: 0xffffffff, int32_t: -0x80000000, uint64_t: 0xffffffffffffffffn })[ctype] ??
  -(1n << 63n);
const zeros: Pick = (ctype) => (wide(ctype) ? 0n : 0);

describe("encode", () => {
  it.each(structNames)("%s: encode → decode round-trips and writes exactly SIZE bytes", (name) => {
    const layout = layouts.get(name)!;
    for (const pick of [distinct(), extremes, zeros]) {
      const value = sample(layout, pick);
      const { bytes, view } = buffer(layout.SIZE + 10, 0xaa);
      encode(layout, view, 5, value as never);
      expect(decode(layout, view, 5)).toEqual(value);
      expect([...bytes.subarray(0, 5), ...bytes.subarray(5 + layout.SIZE)]).toEqual(new Array(10).fill(0xaa));
      // fuse.h has no implicit padding, so every byte of the struct is written.
      if (pick === zeros) expect(bytes.subarray(5, 5 + layout.SIZE).every((b) => b === 0)).toBe(true);
    }
  });

  it("defaults reserved fields (padding, dummy, unused, spare) to 0", () => {
    const { bytes, view } = buffer(fuse_init_in.SIZE, 0xaa);
    encode(fuse_init_in, view, 0, { major: 7, minor: 38, max_readahead: 0, flags: 0, flags2: 0 });
    expect(bytes.subarray(20).every((b) => b === 0)).toBe(true);
  });

  it("takes bigint or a safe integer for 64-bit fields", () => {
    const { view } = buffer(fuse_open_out.SIZE);
    const reply: StructInput<typeof fuse_open_out> = { fh: 5, open_flags: abi.FOPEN_KEEP_CACHE };
    encode(fuse_open_out, view, 0, reply);
    expect(decode(fuse_open_out, view, 0)).toEqual({ fh: 5n, open_flags: 2, padding: 0 });
    encode(fuse_open_out, view, 0, { fh: -1n, open_flags: 0 });
    expect(decode(fuse_open_out, view, 0).fh).toBe(0xffffffffffffffffn);
  });

  it("refuses values that do not fit or have lost precision", () => {
    const { view } = buffer(fuse_open_out.SIZE);
    for (const fh of [2 ** 53, 1.5, Number.NaN, 1n << 64n, -(1n << 63n) - 1n]) {
      expect(() => encode(fuse_open_out, view, 0, { fh, open_flags: 0 }), String(fh)).toThrow(RangeError);
    }
    for (const open_flags of [2 ** 32, -(2 ** 31) - 1, 0.5]) {
      expect(() => encode(fuse_open_out, view, 0, { fh: 0n, open_flags })).toThrow(RangeError);
    }
    // @ts-expect-error open_flags is required
    expect(() => encode(fuse_open_out, view, 0, { fh: 0n })).toThrow(/fuse_open_out\.open_flags/);
  });

  it("stores negative 32-bit values as two's complement: errors and int32 flags", () => {
    const { view } = buffer(fuse_out_header.SIZE);
    encode(fuse_out_header, view, 0, { len: 16, error: -Errno.ENOENT, unique: 0xfffffffffffffffen });
    expect(view.getInt32(fuse_out_header.error, true)).toBe(-2);
    expect(decode(fuse_out_header, view, 0)).toEqual({ len: 16, error: -2, unique: 0xfffffffffffffffen });
    encode(fuse_out_header, view, 0, { len: 1 << 31, error: 0, unique: 0n });
    expect(view.getUint32(0, true)).toBe(0x80000000);
  });

  it("writes only the prefix an older minor expects (FUSE_COMPAT_ENTRY_OUT_SIZE)", () => {
    const value = sample(fuse_entry_out, distinct());
    const { bytes, view } = buffer(fuse_entry_out.SIZE, 0xaa);
    encode(fuse_entry_out, view, 0, value as never, FUSE_COMPAT_ENTRY_OUT_SIZE);
    expect(bytes.subarray(FUSE_COMPAT_ENTRY_OUT_SIZE).every((b) => b === 0xaa)).toBe(true);
    expect(bytes.subarray(0, FUSE_COMPAT_ENTRY_OUT_SIZE).includes(0xaa)).toBe(false);
  });
});

describe("INIT flags", () => {
  it("flags2 counts only with FUSE_INIT_EXT, as the kernel reads it", () => {
    const ext = Number(FUSE_INIT_EXT);
    expect(initFlags(ext | 1, 0b11)).toBe(FUSE_INIT_EXT | 1n | FUSE_SECURITY_CTX | FUSE_HAS_INODE_DAX);
    expect(initFlags(1, 0b11)).toBe(1n);
    expect(initFlags(-0x80000000, 0)).toBe(abi.FUSE_INIT_RESERVED);
    expect(() => {
      // @ts-expect-error a 32-bit word cannot be tested against a 64-bit flag (it would throw)
      return 1 & FUSE_SECURITY_CTX;
    }).toThrow(TypeError);
  });

  it("splits into flags and flags2", () => {
    expect(splitInitFlags(FUSE_INIT_EXT | FUSE_HAS_INODE_DAX | abi.FUSE_INIT_RESERVED)).toEqual({
      flags: 0xc0000000,
      flags2: 0b10,
    });
    const f = abi.FUSE_ASYNC_READ | FUSE_INIT_EXT | abi.FUSE_HAS_EXPIRE_ONLY;
    const { flags, flags2 } = splitInitFlags(f);
    expect(initFlags(flags, flags2)).toBe(f);
  });
});

describe("names in requests", () => {
  const enc = new TextEncoder();
  const bytesOf = (...parts: (string | number)[]): Uint8Array =>
    new Uint8Array(parts.flatMap((p) => (typeof p === "number" ? [p] : [...enc.encode(p)])));

  it("accepts exactly NAME_MAX (255) bytes, refuses 256 with ENAMETOOLONG", () => {
    const ok = bytesOf("a".repeat(255), 0);
    expect(nameLength(ok, 0, ok.length)).toBe(255);
    expect(decodeName(ok, 0, ok.length)).toEqual({ name: "a".repeat(255), next: 256 });
    const long = bytesOf("a".repeat(256), 0);
    expect(nameLength(long, 0, long.length)).toBe(-Errno.ENAMETOOLONG);
    expect(decodeName(long, 0, long.length)).toBe(-Errno.ENAMETOOLONG);
    const noNul = bytesOf("a".repeat(1000));
    expect(nameLength(noNul, 0, noNul.length)).toBe(-Errno.ENAMETOOLONG);
    // Bytes, not characters: 128 two-byte characters are 256 bytes.
    const wide = bytesOf("é".repeat(128), 0);
    expect(decodeName(wide, 0, wide.length)).toBe(-Errno.ENAMETOOLONG);
  });

  it("refuses a name without its NUL inside the range", () => {
    const b = bytesOf("abc", 0);
    expect(nameLength(b, 0, 3)).toBe(-Errno.EINVAL);
    expect(decodeName(b, 0, 3)).toBe(-Errno.EINVAL);
    expect(nameLength(b, 0, 99)).toBe(3); // the range is clamped to the buffer
    expect(nameLength(b, 2, 1)).toBe(-Errno.EINVAL);
    expect(nameLength(bytesOf("abc"), 0, 99)).toBe(-Errno.EINVAL);
  });

  it("splits consecutive names at their NULs, as RENAME and SYMLINK send them", () => {
    const b = bytesOf("old", 0, "new", 0);
    const first = decodeName(b, 0, b.length);
    expect(first).toEqual({ name: "old", next: 4 });
    if (typeof first === "number") throw new Error("unreachable");
    expect(decodeName(b, first.next, b.length)).toEqual({ name: "new", next: 8 });
    // Whatever follows the first NUL is not part of the name.
    const tail = bytesOf("a", 0, "b");
    expect(decodeName(tail, 0, tail.length)).toEqual({ name: "a", next: 2 });
  });

  it("returns empty, '.', '..' and '/' names for the caller to judge", () => {
    const b = bytesOf(0, ".", 0, "..", 0, "a/b", 0);
    expect(decodeName(b, 0, b.length)).toEqual({ name: "", next: 1 });
    expect(decodeName(b, 1, b.length)).toEqual({ name: ".", next: 3 });
    expect(decodeName(b, 3, b.length)).toEqual({ name: "..", next: 6 });
    expect(decodeName(b, 6, b.length)).toEqual({ name: "a/b", next: 10 });
    for (const n of ["", ".", "..", "a/b", "/", "a/"]) expect(isPlainName(n), n).toBe(false);
    for (const n of ["a", "...", ".a", "a..", " ", "é"]) expect(isPlainName(n), n).toBe(true);
  });

  it("decodes UTF-8 exactly: invalid sequences are EILSEQ, a leading BOM is kept", () => {
    expect(decodeName(bytesOf(0xff, 0), 0, 2)).toBe(-Errno.EILSEQ);
    expect(decodeName(bytesOf(0xc3, 0), 0, 2)).toBe(-Errno.EILSEQ);
    expect(decodeName(bytesOf("\ufeffx", 0), 0, 5)).toEqual({ name: "\ufeffx", next: 5 });
    expect(decodeName(bytesOf("é", 0), 0, 3)).toEqual({ name: "é", next: 3 });
  });

  it("takes another limit for xattr names", () => {
    const b = bytesOf("user.x", 0);
    expect(nameLength(b, 0, b.length, 5)).toBe(-Errno.ENAMETOOLONG);
    expect(nameLength(b, 0, b.length, abi.XATTR_NAME_MAX)).toBe(6);
  });
});

describe("directory entries", () => {
  it("name offsets are offsetof(...name)", () => {
    expect(FUSE_NAME_OFFSET).toBe(fx.constants["FUSE_NAME_OFFSET"]);
    expect(FUSE_NAME_OFFSET_DIRENTPLUS).toBe(fx.constants["FUSE_NAME_OFFSET_DIRENTPLUS"]);
  });

  it("record sizes equal FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET[_DIRENTPLUS] + namelen)", () => {
    for (const [n, size] of Object.entries(fx.direntSize)) expect(direntSize(Number(n)), n).toBe(size);
    for (const [n, size] of Object.entries(fx.direntplusSize)) expect(direntplusSize(Number(n)), n).toBe(size);
    expect([0, 1, 7, 8, 9].map(FUSE_REC_ALIGN)).toEqual([0, 8, 8, 8, 16]);
  });
});
