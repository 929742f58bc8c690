// virtiofs-web's public API under Node: everything of ./index.ts, plus a host directory as a share, the
// Guest booted from the package's own images, the `virtiofs-web` command, and the lazy image writers.
export * from "./index.ts";
export { HostDirFs, STORE_DIR, type HostDirOptions } from "./fs/hostdir/hostdir.ts";
export { fileBlobSource } from "./fs/image/file-source.ts";
export { bootGuest, nodeRuntime, restoreGuest, type NodeGuestOptions } from "./machine/node-guest.ts";
export { DEBIAN_IMAGES_DIR, debianRootDir, DEFAULT_IMAGES_DIR, guestImagePaths, loadImages, V86_WASM_PATH } from "./machine/node-images.ts";
export { main as runCli } from "./machine/cli.ts";
export { CHROMIUM_ARGS, CHROMIUM_PATH } from "./machine/chromium.ts";
export { blobPath, IMAGE_FORMAT, IMAGE_VERSION, INDEX_NAME, type ImageEntry, type ImageIndex, type ImageTime } from "./fs/image/format.ts";
export { writeImage, type WriteImageOptions, type WriteImageResult } from "./fs/image/write.ts";
export { writeV86BaseFs, v86FileName, type V86BaseFs, type V86BaseFsResult, type V86FsNode } from "./fs/image/v86-basefs.ts";
