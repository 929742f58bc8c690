// The guest images (public/guest/) and their manifest: the one place that knows their names and checks
// their bytes, for Node and for the browser alike.

export const IMAGE_NAMES = ["bios.bin", "bzImage", "initramfs.cpio"] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

export interface ManifestFile {
  name: string;
  size: number;
  sha256: string;
}

export interface ManifestPackage {
  name: string;
  version: string;
  source: string;
  licence: string;
  arch?: string;
  provides: string[];
}

export interface Manifest {
  arch: string;
  files: ManifestFile[];
  packages: ManifestPackage[];
  kernel_config: string;
  patches: string[];
}

export type GuestImages = Record<ImageName, ArrayBuffer>;

export class ImageError extends Error {}

export function parseManifest(text: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ImageError("guest manifest is not valid JSON");
  }
  const files = (m as Partial<Manifest> | null)?.files;
  if (!Array.isArray(files)) throw new ImageError("guest manifest has no file list");
  for (const name of IMAGE_NAMES) {
    const f = files.find((x) => x?.name === name);
    if (!f || typeof f.size !== "number" || !/^[0-9a-f]{64}$/.test(String(f.sha256))) {
      throw new ImageError(`guest manifest has no valid entry for ${name}`);
    }
  }
  return m as Manifest;
}

/**
 * Each image buffer's sha256, once: the images are verified as they load and named by their sums in every
 * snapshot saved or restored, and nothing writes to them (v86 gets copies).
 */
const sums = new WeakMap<ArrayBuffer, Promise<string>>();

export function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  let sum = sums.get(bytes);
  if (!sum) {
    sum = crypto.subtle.digest("SHA-256", bytes).then((d) => Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join(""));
    sums.set(bytes, sum);
  }
  return sum;
}

/** Throws an ImageError naming the file when its size or sha256 differs from the manifest. */
export async function verifyImage(manifest: Manifest, name: ImageName, bytes: ArrayBuffer): Promise<void> {
  const entry = manifest.files.find((f) => f.name === name);
  if (!entry) throw new ImageError(`guest manifest has no entry for ${name}`);
  if (bytes.byteLength !== entry.size) {
    throw new ImageError(`guest image ${name} is ${bytes.byteLength} bytes, the manifest says ${entry.size}`);
  }
  const sum = await sha256Hex(bytes);
  if (sum !== entry.sha256) throw new ImageError(`guest image ${name} has sha256 ${sum}, the manifest says ${entry.sha256}`);
}
