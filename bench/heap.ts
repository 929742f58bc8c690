// The heap a long run watches for leaks (the lifecycle soak, the fuzzer).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let collect: (() => void) | undefined;
/** Heap in use after a full collection (gc exposed at run time, so no node flag is needed). */
export function heapUsed(): number {
  if (!collect) {
    setFlagsFromString("--expose-gc");
    collect = runInNewContext("gc") as () => void;
  }
  collect();
  return process.memoryUsage().heapUsed;
}
