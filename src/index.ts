// virtiofs-web's public API, for the browser and Node alike (Node adds the host-directory backend and the
// Node Guest in ./node.ts). Everything a v86 embedder, the demo page and the benchmarks use comes from here.

// Putting devices on a v86 PC.
export { attachVirtioFs, daxWindowSize, v86MemorySize, DAX_MIB_MAX, DAX_MIB_MIN, type AttachedShare, type VirtioFsAttachment, type VirtioFsShare } from "./machine/attach.ts";

// A whole guest: boot, run commands over the serial console, reboot, shut down.
export { Guest, GuestError, shareMountOptions, text, type GuestOptions, type GuestRuntime, type GuestShare, type RestoreOptions, type RunResult, type SavedShare } from "./machine/guest.ts";
// Snapshots: Guest.saveState() writes one, Guest.restore() resumes it.
export { checkSnapshot, SnapshotError, SNAPSHOT_VERSION, unpackSnapshot, type SnapshotContents } from "./machine/snapshot.ts";
export { StateError, type Saved } from "./vfs/state.ts";
export type { GuestRam, NinepTree } from "./machine/machine.ts";
export { sharedMemoryAvailable } from "./machine/v86-shared-memory.ts";
export { CmdlineError, kernelCmdline, type GuestMount } from "./machine/cmdline.ts";
export { fetchImages as fetchGuestImages, type Progress } from "./machine/fetch-images.ts";
export type { HeadlessEvent, HeadlessSettings } from "./machine/headless-protocol.ts";
export { IMAGE_NAMES, ImageError, parseManifest, verifyImage, type GuestImages, type ImageName, type Manifest } from "./machine/images.ts";

// Backends, and the contract a backend of your own implements.
export { MemFs, type MemFsOptions } from "./fs/memfs/memfs.ts";
export { createSampleTree } from "./fs/sample-tree.ts";
export { OpfsFs, type OpfsOptions } from "./fs/opfs/opfs.ts";
export { ImageFs, type ImageFsOptions } from "./fs/image/image.ts";
export { OverlayFs } from "./fs/image/overlay.ts";
export { parseImageIndex } from "./fs/image/index.ts";
export { httpBlobSource } from "./fs/image/sources.ts";
export { DEFAULT_CACHE_BYTES, type BlobSource } from "./fs/image/blobs.ts";
export { blobPath, IMAGE_FORMAT, IMAGE_VERSION, ImageFormatError, INDEX_NAME, type ImageEntry, type ImageIndex, type ImageTime } from "./fs/image/format.ts";
export { decodeRemote, encodeRemote, remoteFileSystem, serveFileSystem, type FsServer, type RemoteAnswer, type RemoteCall, type RemoteInfo } from "./fs/remote.ts";
export { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs, type Timespec } from "./vfs/filesystem.ts";
export type { Awaitable } from "./vfs/awaitable.ts";
export * from "./vfs/errno.ts";
export * from "./vfs/linux.ts";

// The FUSE side, for inspectors and custom wiring.
export { FuseServer, type ChainDescriptor, type FuseObserver, type FuseServerOptions, type RequestChain, type RequestTrace } from "./fuse/server.ts";
export { CACHE_MODES, LOCK_MODES, type CacheMode, type LockMode } from "./fuse/session.ts";
export { FuseOpcode, fuse_in_header, fuse_out_header, fuseOpcodeName } from "./fuse/abi.ts";
export { describeRequest, formatMode, formatOpenFlags, replyErrorName, type ArgValue, type DescribedRequest } from "./fuse/describe.ts";
export { annotateReply, annotateRequest, formatInitFlags, type ByteField } from "./fuse/annotate.ts";
export type { DaxSnapshot } from "./fuse/dax.ts";

// The emulated hardware, for drawing it.
export { VirtioFsDevice, type QueueState } from "../device/virtio-fs.ts";
export { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type RingSnapshot } from "../device/virtqueue.ts";
export { DAX_PAGE_MAPPED, DAX_PAGE_SIZE, DAX_PAGE_WRITABLE, DaxWindow, type DaxExtent } from "../device/dax-window.ts";
