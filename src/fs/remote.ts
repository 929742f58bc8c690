// A FileSystem whose calls run somewhere else — a dedicated Worker, or the Node process that drives a
// headless browser — over any transport that carries one call and brings back its answer. The serving side
// answers only the FileSystem's own methods (and those it is told to add), so a caller cannot reach
// anything else of the object it serves.
import { FsError, type FileSystem, type FsCapabilities, type Ino } from "../vfs/filesystem.ts";

/** Every method of the FileSystem contract. */
export const FS_METHODS = [
  "lookup", "forget", "getattr", "readlink", "access", "statfs", "open", "read", "release", "opendir", "readdir",
  "releasedir", "setattr", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "create", "tmpfile",
  "write", "flush", "fsync", "fsyncdir", "syncfs", "fallocate", "lseek", "copyFileRange", "getxattr", "setxattr",
  "listxattr", "removexattr",
] as const satisfies readonly (keyof FileSystem)[];

export interface RemoteCall {
  method: string;
  args: unknown[];
}

export type RemoteAnswer = { ok: true; value: unknown } | { ok: false; errno?: number; message: string };

/** What the calling side must know before its first call. */
export interface RemoteInfo {
  rootIno: Ino;
  capabilities: FsCapabilities;
  /** The methods the served object has (flush is optional in the contract). */
  methods: string[];
}

export interface FsServer {
  readonly info: RemoteInfo;
  answer(call: RemoteCall): Promise<RemoteAnswer>;
}

/** Serves `fs`; `extra` names further methods of the object a caller may use (e.g. close). */
export function serveFileSystem(fs: FileSystem, extra: readonly string[] = []): FsServer {
  const target = fs as unknown as Record<string, unknown>;
  const methods = [...FS_METHODS, ...extra].filter((m) => typeof target[m] === "function");
  const allowed = new Set(methods);
  return {
    info: { rootIno: fs.rootIno, capabilities: { ...fs.capabilities }, methods },
    async answer({ method, args }) {
      if (!allowed.has(method) || !Array.isArray(args)) return { ok: false, message: `no method ${String(method)}` };
      try {
        return { ok: true, value: await (target[method] as (...a: unknown[]) => unknown).apply(fs, args) };
      } catch (e) {
        return { ok: false, errno: e instanceof FsError ? e.errno : undefined, message: e instanceof Error ? e.message : String(e) };
      }
    },
  };
}

/** The calling side: a FileSystem (plus any extra methods served) whose every call goes through `send`. */
export function remoteFileSystem<T extends FileSystem = FileSystem>(info: RemoteInfo, send: (call: RemoteCall) => Promise<RemoteAnswer>): T {
  const fs: Record<string, unknown> = { rootIno: info.rootIno, capabilities: info.capabilities };
  for (const method of info.methods) {
    fs[method] = async (...args: unknown[]) => {
      // Optional arguments left out stay out: JSON would turn a trailing undefined into null.
      while (args.length && args[args.length - 1] === undefined) args.pop();
      const a = await send({ method, args });
      if (a.ok) return a.value;
      if (a.errno === undefined) throw new Error(a.message);
      const e = new FsError(a.errno);
      e.message = a.message;
      throw e;
    };
  }
  return fs as unknown as T;
}

/** JSON for calls and answers over a text transport (HTTP): byte arrays travel as base64. */
export function encodeRemote(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $bytes: toBase64(v) } : v));
}

export function decodeRemote(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => (isBytes(v) ? fromBase64(v.$bytes) : v));
}

const isBytes = (v: unknown): v is { $bytes: string } => typeof v === "object" && v !== null && typeof (v as { $bytes?: unknown }).$bytes === "string";

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
