// Attaches a virtio-fs device serving a FileSystem to a v86 machine: the v86 bus, the device, the
// FUSE server. Used by the Node Guest and the browser Worker alike.
import type { V86 } from "v86";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import type { FileSystem } from "../fs/filesystem.ts";
import { FuseServer, type CacheMode, type FuseObserver } from "../fuse/server.ts";
import { V86Bus } from "./v86-bus.ts";

export interface VirtioFsShare {
  tag: string;
  fs: FileSystem;
  cache?: CacheMode;
  writeback?: boolean;
  numRequestQueues?: number;
  log?(message: string): void;
  /** Sees every FUSE request and reply (the page's inspector). */
  observer?: FuseObserver;
}

/** Base of the devices' I/O BARs: clear of v86's own devices; the BIOS may move them. */
const IO_PORT_BASE = 0xa000;
const IO_PORT_STRIDE = 0x100;

export interface AttachedShare {
  device: VirtioFsDevice;
  server: FuseServer;
}

export function attachVirtioFs(emulator: V86, shares: VirtioFsShare[]): AttachedShare[] {
  const bus = new V86Bus(emulator);
  return shares.map((share, i) => {
    const log = share.log ?? ((m: string) => console.warn(m));
    const server = new FuseServer({ fs: share.fs, cache: share.cache, writeback: share.writeback, log, observer: share.observer });
    const device = new VirtioFsDevice(bus, {
      tag: share.tag,
      numRequestQueues: share.numRequestQueues,
      ioPort: IO_PORT_BASE + i * IO_PORT_STRIDE,
      handler: server.handle,
      onReset: () => void server.reset(),
      onError: (m) => log(`virtio-fs ${share.tag}: ${m}`),
    });
    return { device, server };
  });
}
