// A FuseObserver that counts requests per opcode name, for tests that assert what the guest sent.
import { fuseOpcodeName, type FuseObserver } from "../../src/index.ts";

export function opcodeCounter(): { observer: FuseObserver; count(name: string): number; clear(): void } {
  const ops = new Map<string, number>();
  return {
    observer: {
      request: (t) => {
        const name = fuseOpcodeName(t.opcode) ?? String(t.opcode);
        ops.set(name, (ops.get(name) ?? 0) + 1);
      },
      reply: () => {},
    },
    count: (name) => ops.get(name) ?? 0,
    clear: () => ops.clear(),
  };
}
