// virtiofs-web's public API under Node: everything of ./index.ts, plus a host directory as a share, the
// Guest booted from the package's own images, and the `virtiofs-web` command.
export * from "./index.ts";
export { HostDirFs, STORE_DIR, type HostDirOptions } from "./fs/hostdir/hostdir.ts";
export { fileBlobSource } from "./fs/image/file-source.ts";
export { bootGuest, nodeRuntime, restoreGuest, type NodeGuestOptions } from "./machine/node-guest.ts";
export { DEBIAN_IMAGES_DIR, debianRootDir, DEFAULT_IMAGES_DIR, guestImagePaths, loadImages, V86_WASM_PATH } from "./machine/node-images.ts";
export { main as runCli } from "./machine/cli.ts";
export { CHROMIUM_ARGS, CHROMIUM_PATH } from "./machine/chromium.ts";
