// The virtio-fs device (virtio spec 5.11): a hiprio queue, N request queues and the DAX window's shared
// memory region. It knows nothing of FUSE: every chain goes to a RequestHandler, and completions may
// come back in any order. A handler that answers at once completes its chain inside the driver's notify,
// and the notify raises the interrupt before it returns: the guest finds the reply without waiting for
// the emulator to come back to the device (as v86's own virtio devices answer).
import type { DeviceBus } from "./bus.ts";
import { VirtioPciTransport, type VirtioPciState } from "./virtio-pci.ts";
import { SPLIT_QUEUE_MAX_SIZE, VirtqueueError, type DescriptorChain, type RingSnapshot } from "./virtqueue.ts";

export const VIRTIO_ID_FS = 26;
/** Shared memory region id of the DAX cache window (virtio_fs.h). */
export const VIRTIO_FS_SHMCAP_ID_CACHE = 0;
/** struct virtio_fs_config: u8 tag[36]; le32 num_request_queues. */
export const VIRTIO_FS_TAG_LEN = 36;

/** Handles one request chain: the number of bytes written into the chain's writable part, or a Promise of it. */
export type RequestHandler = (chain: DescriptorChain, queue: number) => number | Promise<number>;

export interface DaxBar {
  /** PCI BAR number and fixed guest physical address; size is a power of two. */
  bar: number;
  address: number;
  size: number;
}

/** A queue as the inspector draws it. */
export interface QueueState {
  index: number;
  size: number;
  availIdx: number;
  lastAvail: number;
  usedIdx: number;
  /** Chains handed to the handler and not yet completed. */
  inflight: number;
  /** Chains taken from the ring but held back while the device is paused. */
  held: number;
  /** The ring's newest entries (RING_ENTRIES of each), the chains in flight, and the heads held. */
  ring: RingSnapshot;
  heldHeads: number[];
}

/** Avail and used entries a QueueState shows. */
export const RING_ENTRIES = 8;

export interface VirtioFsOptions {
  tag: string;
  numRequestQueues?: number;
  queueSize?: number;
  /** Initial I/O port of the transport's registers. */
  ioPort?: number;
  dax?: DaxBar;
  handler: RequestHandler;
  /** The driver reset the device: every session state must go. */
  onReset?(): void;
  /** The device entered DEVICE_NEEDS_RESET (a malformed ring), or a handler failed. */
  onError?(message: string): void;
  /** Bytes of chains (readable + writable) taken from the rings and not yet completed; default 64 MiB. */
  maxInflightBytes?: number;
}

/**
 * What one kick may cost the emulator: the device takes at most this many chains per task (the rest in a
 * later task, so the guest's port write returns and v86 keeps its timers), and stops taking chains while
 * maxInflightBytes are in flight (completions resume it). The guest sees slower service, never an error.
 */
export const DRAIN_SLICE = 64;
export const DEFAULT_MAX_INFLIGHT_BYTES = 64 << 20;

const chainBytes = (chain: DescriptorChain): number => chain.reader.readable + chain.writer.writable;

export class VirtioFsDevice {
  readonly transport: VirtioPciTransport;
  readonly numRequestQueues: number;
  /** Bumped on every reset: completions of requests from before it are dropped. */
  private generation = 0;
  private readonly interruptPending = new Set<number>();
  /** While paused, chains wait here (in ring order) instead of reaching the handler. */
  private paused = false;
  private readonly held: { generation: number; q: number; chain: DescriptorChain }[] = [];
  private inflightBytes = 0;
  private readonly maxInflightBytes: number;
  /** Queues that stopped taking chains at the byte cap, and queues with a later slice scheduled. */
  private readonly starved = new Set<number>();
  private readonly sliced = new Set<number>();
  /** While above 0, completions leave their interrupt check to the drain that runs (it makes it once). */
  private draining = 0;

  constructor(bus: DeviceBus, private readonly o: VirtioFsOptions) {
    const tag = new TextEncoder().encode(o.tag);
    if (tag.length === 0 || tag.length > VIRTIO_FS_TAG_LEN) throw new RangeError(`tag must be 1..${VIRTIO_FS_TAG_LEN} bytes`);
    this.numRequestQueues = o.numRequestQueues ?? 1;
    this.maxInflightBytes = o.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES;
    const config = new Uint8Array(VIRTIO_FS_TAG_LEN + 4);
    config.set(tag);
    new DataView(config.buffer).setUint32(VIRTIO_FS_TAG_LEN, this.numRequestQueues, true);
    this.transport = new VirtioPciTransport(bus, {
      name: `virtio-fs ${o.tag}`,
      deviceType: VIRTIO_ID_FS,
      numQueues: 1 + this.numRequestQueues,
      maxQueueSize: o.queueSize ?? SPLIT_QUEUE_MAX_SIZE,
      deviceConfig: config,
      ioPort: o.ioPort ?? 0xa000,
      shm: o.dax && { id: VIRTIO_FS_SHMCAP_ID_CACHE, ...o.dax },
      onNotify: (q) => this.drain(q),
      onReset: () => {
        this.generation++;
        this.interruptPending.clear();
        this.held.length = 0;
        this.inflightBytes = 0;
        this.starved.clear();
        o.onReset?.();
      },
      onError: o.onError,
    });
  }

  /** Holds every new request back until step() or resume(): to watch a request's path one at a time. */
  pause(): void {
    this.paused = true;
  }

  /** Releases the oldest held request; false if none was held. */
  step(): boolean {
    const next = this.held.shift();
    if (next) this.dispatch(next.generation, next.q, next.chain);
    return next !== undefined;
  }

  resume(): void {
    this.paused = false;
    while (this.step()) {
      // dispatch everything held, oldest first
    }
  }

  queueStates(): QueueState[] {
    const states: QueueState[] = [];
    for (let q = 0; q <= this.numRequestQueues; q++) {
      const ring = this.transport.queue(q);
      if (!ring) continue;
      const held = this.held.filter((h) => h.q === q).map((h) => h.chain.head);
      states.push({ index: q, size: ring.size, ...ring.indices, inflight: ring.inflight, held: held.length, ring: ring.snapshot(RING_ENTRIES), heldHeads: held });
    }
    return states;
  }

  /**
   * The device's part of a snapshot. Take it with the machine stopped and the handler settled: the chains
   * still in flight (a request waiting on a lock, chains held while paused) are saved by head and served
   * again after restore, so a request reaches the handler either before the snapshot or after it.
   */
  save(): VirtioPciState {
    return this.transport.save();
  }

  /**
   * Takes a saved state into a device just attached with the same options, after the guest memory and the
   * handler's session are restored: serves the chains that were in flight again and takes any the driver
   * published meanwhile. VirtqueueError (device reset) when the state does not fit this device.
   */
  restore(state: VirtioPciState): void {
    const inflight = this.transport.restore(state);
    inflight.forEach((chains, q) => {
      for (const chain of chains) {
        this.inflightBytes += chainBytes(chain);
        this.dispatch(this.generation, q, chain);
      }
    });
    inflight.forEach((_, q) => this.drain(q));
  }

  /** Resets the device as a PCI reset would (the machine rebooted). */
  reset(): void {
    this.transport.reset();
  }

  /** Resets the device and takes it off the bus: requests in flight are never completed. */
  remove(): void {
    this.transport.remove();
  }

  /** Takes every available chain of queue q and hands each to the handler. */
  private drain(q: number): void {
    const ring = this.transport.queue(q);
    if (!ring) return;
    const generation = this.generation;
    this.draining++;
    try {
      // Kicks are off while the device is taking chains; turning them back on re-checks the ring, so a
      // chain published in between is not left waiting for a kick that will not come.
      // Stopping early leaves kicks off: the device comes back by itself (a completion, a later slice).
      do {
        ring.disableNotifications();
        for (let taken = 0; ; taken++) {
          if (this.inflightBytes >= this.maxInflightBytes) return void this.starved.add(q);
          if (taken === DRAIN_SLICE) return this.drainLater(q);
          const chain = ring.pop();
          if (!chain) break;
          this.inflightBytes += chainBytes(chain);
          if (this.paused) this.held.push({ generation, q, chain });
          else this.dispatch(generation, q, chain);
        }
      } while (ring.enableNotifications());
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.transport.fail(`queue ${q}: ${e.message}`);
    } finally {
      this.draining--;
      // Chains answered at once (this queue's, or a starved one's this drain resumed) get one check each.
      if (this.draining === 0 && generation === this.generation) this.raisePending();
    }
  }

  private drainLater(q: number): void {
    if (this.sliced.has(q)) return;
    this.sliced.add(q);
    const generation = this.generation;
    setTimeout(() => {
      this.sliced.delete(q);
      if (generation === this.generation) this.drain(q);
    }, 0);
  }

  private dispatch(generation: number, q: number, chain: DescriptorChain): void {
    let written: number | Promise<number>;
    try {
      written = this.o.handler(chain, q);
    } catch (e) {
      return this.failed(generation, q, chain, e);
    }
    if (typeof written === "number") this.complete(generation, q, chain, written);
    else {
      written.then(
        (n) => this.complete(generation, q, chain, n),
        (e: unknown) => this.failed(generation, q, chain, e),
      );
    }
  }

  private failed(generation: number, q: number, chain: DescriptorChain, e: unknown): void {
    if (generation !== this.generation) return; // the reset closed the chain under the handler
    // A VirtqueueError: another chain broke the ring while this one was served, and that was reported.
    if (!(e instanceof VirtqueueError)) this.o.onError?.(`queue ${q}: request handler failed: ${e instanceof Error ? e.message : String(e)}`);
    this.complete(generation, q, chain, 0);
  }

  private complete(generation: number, q: number, chain: DescriptorChain, written: number): void {
    if (generation !== this.generation) return;
    this.inflightBytes -= chainBytes(chain);
    const ring = this.transport.queue(q);
    if (!ring) return;
    ring.push(chain, written);
    for (const starved of this.starved) {
      if (this.inflightBytes >= this.maxInflightBytes) break;
      this.starved.delete(starved);
      this.drain(starved);
    }
    // Completions that land in the same task (or drain) share one interrupt check.
    if (this.interruptPending.has(q)) return;
    this.interruptPending.add(q);
    if (this.draining > 0) return;
    queueMicrotask(() => {
      if (generation === this.generation) this.raisePending();
    });
  }

  private raisePending(): void {
    for (const q of this.interruptPending) {
      this.interruptPending.delete(q);
      this.transport.interruptIfNeeded(q);
    }
  }
}
