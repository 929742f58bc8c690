// guest/rootfs's last step: the built tree as a lazy image, and as v86's basefs from the same blobs.
// Usage: node --import tsx guest/write-image.ts <tree> <image dir> <v86 dir>   (SOURCE_DATE_EPOCH clamps times)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { INDEX_NAME, type ImageIndex, writeImage, writeV86BaseFs } from "../src/node.ts";

const [tree, imageDir, v86Dir] = process.argv.slice(2);
if (!tree || !imageDir || !v86Dir) {
  console.error("usage: guest/write-image.ts <tree> <image dir> <v86 dir>");
  process.exit(2);
}
const epoch = process.env.SOURCE_DATE_EPOCH;
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

let t0 = performance.now();
const image = await writeImage(tree, imageDir, epoch ? { sourceDateEpoch: Number(epoch) } : {});
console.log(
  `image: ${image.entries} entries, ${image.files} regular files, ${mib(image.bytes)} in ${image.blobs} blobs of ` +
    `${mib(image.blobBytes)} (${((100 * image.blobBytes) / image.bytes).toFixed(1)}% of the bytes), ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

t0 = performance.now();
const index = JSON.parse(await readFile(join(imageDir, INDEX_NAME), "utf8")) as ImageIndex;
const v86 = await writeV86BaseFs(index, imageDir, v86Dir);
console.log(
  `v86 basefs: ${v86.files} files, ${mib(v86.bytes)}, ${v86.dropped} entries v86 cannot hold left out, ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
