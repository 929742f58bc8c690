// A FileSystem wrapper that counts what the server holds of the backend: handles (open, opendir, create,
// tmpfile less release, releasedir) and inode references (every call that answers an entry, less forget).
// After a device reset both must be back to zero, whatever the guest sent.
import type { FileAttr, FileSystem, Handle, Ino } from "../src/index.ts";

export class Holdings {
  handles = new Set<Handle>();
  readonly refs = new Map<Ino, number>();

  ref(ino: Ino): void {
    this.refs.set(ino, (this.refs.get(ino) ?? 0) + 1);
  }

  forget(ino: Ino, n: number): void {
    const left = (this.refs.get(ino) ?? 0) - n;
    if (left > 0) this.refs.set(ino, left);
    else this.refs.delete(ino);
  }

  get refCount(): number {
    let n = 0;
    for (const c of this.refs.values()) n += c;
    return n;
  }
}

const ENTRY_CALLS = new Set(["lookup", "mknod", "mkdir", "symlink", "link"]);
const OPEN_CALLS = new Set(["open", "opendir"]);
const CREATE_CALLS = new Set(["create", "tmpfile"]);
const RELEASE_CALLS = new Set(["release", "releasedir"]);

export function countingFs(fs: FileSystem, h: Holdings): FileSystem {
  return new Proxy(fs, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      const call = (...args: unknown[]): unknown => (value as (...a: unknown[]) => unknown).apply(target, args);
      if (ENTRY_CALLS.has(prop)) return async (...args: unknown[]) => {
        const attr = (await call(...args)) as FileAttr;
        h.ref(attr.ino);
        return attr;
      };
      if (CREATE_CALLS.has(prop)) return async (...args: unknown[]) => {
        const r = (await call(...args)) as { attr: FileAttr; fh: Handle };
        h.ref(r.attr.ino);
        h.handles.add(r.fh);
        return r;
      };
      if (OPEN_CALLS.has(prop)) return async (...args: unknown[]) => {
        const fh = (await call(...args)) as Handle;
        h.handles.add(fh);
        return fh;
      };
      if (RELEASE_CALLS.has(prop)) return async (fh: Handle) => {
        await call(fh);
        h.handles.delete(fh);
      };
      if (prop === "forget") return async (ino: Ino, n: number) => {
        await call(ino, n);
        h.forget(ino, n);
      };
      return call;
    },
  });
}
