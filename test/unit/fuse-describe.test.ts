import { describe, expect, it } from "vitest";
import {
  FATTR_FH,
  FATTR_MODE,
  FATTR_SIZE,
  FUSE_FSYNC_FDATASYNC,
  FUSE_RELEASE_FLUSH,
  FuseOpcode as O,
  RENAME_NOREPLACE,
  encode,
  fuse_access_in,
  fuse_create_in,
  fuse_fsync_in,
  fuse_mkdir_in,
  fuse_open_in,
  fuse_read_in,
  fuse_release_in,
  fuse_rename2_in,
  fuse_setattr_in,
  fuse_write_in,
  type Layout,
  type Fields,
  type EncodeInput,
} from "../../src/fuse/abi.ts";
import { describeRequest, formatMode, formatOpenFlags, replyErrorName } from "../../src/fuse/describe.ts";

const enc = new TextEncoder();

/** A struct's bytes followed by NUL-terminated names: the argument block the kernel sends. */
function args<F extends Fields>(layout: Layout<F> | undefined, value: EncodeInput<F> | undefined, ...names: string[]): Uint8Array {
  const head = layout ? layout.SIZE : 0;
  const tail = names.map((n) => enc.encode(n + "\0"));
  const out = new Uint8Array(head + tail.reduce((n, t) => n + t.length, 0));
  if (layout && value) encode(layout, new DataView(out.buffer), 0, value);
  let at = head;
  for (const t of tail) {
    out.set(t, at);
    at += t.length;
  }
  return out;
}

const O_LARGEFILE = 0o100000;

describe("describeRequest", () => {
  it("names LOOKUP's, UNLINK's and RMDIR's entry", () => {
    const d = describeRequest(O.FUSE_LOOKUP, args(undefined, undefined, "hello.txt"));
    expect(d).toEqual({ op: "FUSE_LOOKUP", args: { name: "hello.txt" }, text: 'name="hello.txt"' });
    expect(describeRequest(O.FUSE_UNLINK, args(undefined, undefined, "x")).args).toEqual({ name: "x" });
    expect(describeRequest(O.FUSE_RMDIR, args(undefined, undefined, "d")).op).toBe("FUSE_RMDIR");
  });

  it("decodes OPEN's flags by name", () => {
    const d = describeRequest(O.FUSE_OPEN, args(fuse_open_in, { flags: O_LARGEFILE, open_flags: 0 }));
    expect(d.args).toEqual({ flags: "O_RDONLY|O_LARGEFILE" });
    expect(describeRequest(O.FUSE_OPENDIR, args(fuse_open_in, { flags: 0o200000 | O_LARGEFILE, open_flags: 0 })).text).toBe(
      "flags=O_RDONLY|O_LARGEFILE|O_DIRECTORY",
    );
  });

  it("gives READ and WRITE their fh, offset and size as numbers", () => {
    const read = describeRequest(
      O.FUSE_READ,
      args(fuse_read_in, { fh: 3, offset: 4096, size: 131072, read_flags: 0, lock_owner: 0, flags: O_LARGEFILE }),
    );
    expect(read.args).toEqual({ fh: 3, offset: 4096, size: 131072 });
    expect(read.text).toBe("fh=3 offset=4096 size=131072");
    const payload = new Uint8Array(fuse_write_in.SIZE + 5);
    encode(fuse_write_in, new DataView(payload.buffer), 0, { fh: 7, offset: 10, size: 5, write_flags: 0, lock_owner: 0, flags: 2 });
    expect(describeRequest(O.FUSE_WRITE, payload).args).toEqual({ fh: 7, offset: 10, size: 5 });
  });

  it("shows 64-bit values beyond 2^53 in hex rather than rounding them", () => {
    const d = describeRequest(O.FUSE_READ, args(fuse_read_in, { fh: 2n ** 64n - 1n, offset: 0, size: 1, read_flags: 0, lock_owner: 0, flags: 0 }));
    expect(d.args.fh).toBe("0xffffffffffffffff");
  });

  it("decodes CREATE and MKDIR: name, mode, flags", () => {
    const create = describeRequest(
      O.FUSE_CREATE,
      args(fuse_create_in, { flags: 0o1 | 0o100 | 0o1000 | O_LARGEFILE, mode: 0o100644, umask: 0o22, open_flags: 0 }, "new.txt"),
    );
    expect(create.args).toEqual({ name: "new.txt", flags: "O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE", mode: "S_IFREG|0644", umask: "022" });
    const mkdir = describeRequest(O.FUSE_MKDIR, args(fuse_mkdir_in, { mode: 0o755, umask: 0o22 }, "dir"));
    expect(mkdir.args).toEqual({ name: "dir", mode: "0755", umask: "022" });
  });

  it("decodes RELEASE, FSYNC, SETATTR, ACCESS and RENAME2", () => {
    expect(
      describeRequest(O.FUSE_RELEASE, args(fuse_release_in, { fh: 4, flags: O_LARGEFILE, release_flags: FUSE_RELEASE_FLUSH, lock_owner: 0 })).args,
    ).toEqual({ fh: 4, flags: "O_RDONLY|O_LARGEFILE", release_flags: "FLUSH" });
    expect(describeRequest(O.FUSE_FSYNC, args(fuse_fsync_in, { fh: 4, fsync_flags: FUSE_FSYNC_FDATASYNC })).args).toEqual({ fh: 4, datasync: "yes" });
    const setattr = describeRequest(
      O.FUSE_SETATTR,
      args(fuse_setattr_in, {
        valid: FATTR_MODE | FATTR_SIZE | FATTR_FH,
        fh: 9,
        size: 0,
        lock_owner: 0,
        atime: 0,
        mtime: 0,
        ctime: 0,
        atimensec: 0,
        mtimensec: 0,
        ctimensec: 0,
        mode: 0o100600,
        uid: 0,
        gid: 0,
      }),
    );
    expect(setattr.args).toEqual({ valid: "MODE|SIZE|FH", mode: "S_IFREG|0600", size: 0, fh: 9 });
    expect(describeRequest(O.FUSE_ACCESS, args(fuse_access_in, { mask: 6 })).args).toEqual({ mask: "R_OK|W_OK" });
    expect(describeRequest(O.FUSE_RENAME2, args(fuse_rename2_in, { newdir: 1, flags: RENAME_NOREPLACE }, "a", "b")).args).toEqual({
      newdir: 1,
      oldname: "a",
      newname: "b",
      flags: "RENAME_NOREPLACE",
    });
  });

  it("describes short or hostile argument blocks without throwing", () => {
    expect(describeRequest(O.FUSE_READ, new Uint8Array(4)).text).toBe("(arguments cut short)");
    expect(describeRequest(O.FUSE_LOOKUP, enc.encode("no-nul")).text).toBe('name="no-nul" (arguments cut short)');
    expect(describeRequest(O.FUSE_LOOKUP, new Uint8Array(0)).text).toBe("(arguments cut short)");
    const bad = describeRequest(O.FUSE_LOOKUP, new Uint8Array([0xff, 0xfe, 0]));
    expect(bad.args.name).toBe("\ufffd\ufffd");
    expect(describeRequest(12345, new Uint8Array(3))).toEqual({ op: "opcode 12345", args: { bytes: 3 }, text: "bytes=3" });
    expect(describeRequest(O.FUSE_STATFS, new Uint8Array(0)).text).toBe("");
  });
});

describe("formatting helpers", () => {
  it("names errnos, positive or negative", () => {
    expect(replyErrorName(0)).toBe("OK");
    expect(replyErrorName(-2)).toBe("ENOENT");
    expect(replyErrorName(38)).toBe("ENOSYS");
    expect(replyErrorName(-4242)).toBe("errno 4242");
  });

  it("formats modes and open flags with unknown bits in octal", () => {
    expect(formatMode(0o40755)).toBe("S_IFDIR|0755");
    expect(formatMode(0o120777)).toBe("S_IFLNK|0777");
    expect(formatMode(0o4755)).toBe("04755");
    expect(formatOpenFlags(2)).toBe("O_RDWR");
    expect(formatOpenFlags(0o2 | 0o2000 | 0o100000000)).toBe("O_RDWR|O_APPEND|0100000000");
  });
});
