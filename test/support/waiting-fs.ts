// A backend that has to wait: `fs` with the named methods answering only after `gate()` settles, as OPFS or a
// host directory answers after a round trip. The server then serves those requests asynchronously.
import type { FileSystem } from "../../src/vfs/filesystem.ts";

type Method = { [K in keyof FileSystem]-?: FileSystem[K] extends ((...a: never[]) => unknown) | undefined ? K : never }[keyof FileSystem];

export function waitingFs(fs: FileSystem, methods: readonly Method[], gate: () => Promise<unknown> | undefined = () => Promise.resolve()): FileSystem {
  return new Proxy(fs, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      const call = (...args: unknown[]): unknown => Reflect.apply(value, target, args);
      if (!(methods as readonly PropertyKey[]).includes(key)) return call;
      return async (...args: unknown[]) => {
        await gate();
        return call(...args);
      };
    },
  });
}
