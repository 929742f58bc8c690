// Makes v86 resume at once in a browser when a device wakes an idle guest. Between CPU slices v86 yields
// to the event loop, and in a browser it does so through a Worker of its own (v86 main.js, the_worker): a
// message there and back even to resume "now". Each virtio-fs reply comes after the guest went idle, so
// each request paid that round trip between threads. A MessageChannel in the same thread resumes after one
// task instead. Timed yields (an idle guest waiting for its next timer) still go through v86's Worker. In
// Node v86 resumes with setImmediate and has no Worker: nothing changes there.
import type { V86 } from "v86";

/** The part of v86's main loop (v86 main.js) this replaces. */
interface V86Loop {
  /** v86's timer Worker; null in Node. */
  worker: Worker | null;
  yield(t: number, tick: number): void;
  yield_callback(tick: number): void;
}

/**
 * Installs the same-thread resume where v86 yields through a Worker; returns what undoes it. Undoing keeps
 * a resume already posted: v86's stop() waits for the tick it runs, so dropping it would hang destroy().
 */
export function sameThreadResume(emulator: V86): () => void {
  const loop = (emulator as unknown as { v86?: V86Loop }).v86;
  if (!loop?.worker || typeof MessageChannel === "undefined") return () => {};
  const timed = loop.yield;
  const channel = new MessageChannel();
  let posted = 0;
  let undone = false;
  channel.port1.onmessage = (e: MessageEvent<number>) => {
    posted--;
    loop.yield_callback(e.data);
    if (undone && posted === 0) channel.port1.close();
  };
  loop.yield = (t, tick) => {
    if (t >= 1) return timed.call(loop, t, tick);
    posted++;
    channel.port2.postMessage(tick);
  };
  return () => {
    loop.yield = timed;
    undone = true;
    if (posted === 0) channel.port1.close();
  };
}
