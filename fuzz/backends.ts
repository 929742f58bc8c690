// The backends a fuzz run serves, each fresh for every input (so an input replays alone): memfs, a host
// directory in a temporary directory, and either with a DAX window. The host directory sits beside a
// canary file and an outside directory that symlinks inside the share point at: neither may change.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { HostDirFs, MemFs, type FileSystem } from "../src/node.ts";

export const BACKENDS = ["memfs", "hostdir", "dax", "hostdir-dax"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Bytes of the DAX window of the dax backends: one of the 2 MiB ranges Linux maps, 512 pages the server maps. */
export const DAX_WINDOW = 2 << 20;

/** Names in the share, for the generator to aim at (and the symlinks that lead out of a host directory). */
export const FIXTURE_NAMES = ["hello", "big", "dir", "sub", "a", "b", "empty", "link", "escape", "abs", "canary", "up"];

export interface Share {
  fs: FileSystem;
  close(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /** DAX window bytes, 0 for none. */
  readonly dax: number;
  /** Whether the backend holds host file descriptors. */
  readonly hostFds: boolean;
  /** A fresh share with the fixture tree. */
  open(): Promise<Share>;
  /** What changed outside the share since the backend was made: [] when nothing did. */
  outsideChanges(): string[];
  dispose(): void;
}

/** FileSystem calls that may change the tree (a read's atime aside). */
const MUTATING = new Set(["setattr", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "create", "tmpfile", "write", "fallocate", "copyFileRange", "setxattr", "removexattr"]);

const BIG = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 0xff);

function memVolume(): Volume {
  const vol = new Volume();
  vol.mkdirSync("/dir/sub", { recursive: true });
  vol.mkdirSync("/empty");
  vol.writeFileSync("/hello", "hello\n");
  vol.writeFileSync("/big", BIG);
  vol.writeFileSync("/dir/a", "a");
  vol.writeFileSync("/dir/b", "bb");
  vol.symlinkSync("hello", "/link");
  vol.symlinkSync("../outside", "/escape");
  vol.symlinkSync("/outside/secret", "/abs");
  vol.symlinkSync("../canary", "/canary");
  vol.symlinkSync("../../outside/secret", "/dir/up");
  return vol;
}

/** `fs`, calling `changed` before any call that may change the tree. */
function watched(fs: FileSystem, changed: () => void): FileSystem {
  return new Proxy(fs, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const f = value as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (typeof prop === "string" && MUTATING.has(prop)) changed();
        return f.apply(target, args);
      };
    },
  });
}

export function makeBackend(name: BackendName): Backend {
  const dax = name.endsWith("dax") ? DAX_WINDOW : 0;
  // Making the tree costs more than most inputs: it is made again only after an input that may have changed it.
  let changed = true;
  if (!name.startsWith("hostdir")) {
    let vol = memVolume();
    const open = async () => {
      if (changed) vol = memVolume();
      changed = false;
      return { fs: watched(new MemFs(vol), () => (changed = true)), close: async () => {} };
    };
    return { name, dax, hostFds: false, open, outsideChanges: () => [], dispose: () => {} };
  }
  const top = mkdtempSync(join(tmpdir(), "vfsw-fuzz-"));
  const share = join(top, "share");
  const outside = join(top, "outside");
  mkdirSync(join(outside, "sub"), { recursive: true });
  writeFileSync(join(outside, "secret"), "outside the share\n");
  writeFileSync(join(outside, "sub", "deep"), "deeper\n");
  writeFileSync(join(top, "canary"), "canary\n");
  const build = (): void => {
    rmSync(share, { recursive: true, force: true });
    mkdirSync(join(share, "dir", "sub"), { recursive: true });
    mkdirSync(join(share, "empty"));
    writeFileSync(join(share, "hello"), "hello\n");
    writeFileSync(join(share, "big"), BIG);
    writeFileSync(join(share, "dir", "a"), "a");
    writeFileSync(join(share, "dir", "b"), "bb");
    symlinkSync("hello", join(share, "link"));
    symlinkSync("../outside", join(share, "escape"));
    symlinkSync(outside, join(share, "abs"));
    symlinkSync("../canary", join(share, "canary"));
    symlinkSync("../../outside/secret", join(share, "dir", "up"));
  };
  build();
  changed = false;
  const before = snapshot(top);
  return {
    name,
    dax,
    hostFds: true,
    open: async () => {
      if (changed) build();
      changed = false;
      const fs = await HostDirFs.open(share);
      return { fs: watched(fs, () => (changed = true)), close: () => fs.close() };
    },
    outsideChanges: () => {
      const now = snapshot(top);
      return [...new Set([...before.keys(), ...now.keys()])].filter((k) => before.get(k) !== now.get(k)).map((k) => `outside the share: ${k} was ${before.get(k) ?? "absent"}, is ${now.get(k) ?? "absent"}`);
    },
    dispose: () => rmSync(top, { recursive: true, force: true }),
  };
}

/** Every object under `top` but the share's contents: type, mode, size, mtime and (files) bytes. */
function snapshot(top: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (r === "share") {
        out.set(r, "the share"); // rebuilt for every input
        continue;
      }
      const st = lstatSync(path);
      let what = `mode ${st.mode.toString(8)} size ${st.size} mtime ${st.mtimeMs}`;
      if (st.isFile()) what += ` ${readFileSync(path).toString("base64")}`;
      out.set(r, what);
      if (st.isDirectory()) walk(path, r);
    }
  };
  walk(top, "");
  return out;
}
