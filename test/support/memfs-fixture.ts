// The conformance fixture as a memfs Volume: what the memfs backend (and memfs served remotely) start from.
import { Volume } from "memfs";
import type { FixtureItem } from "../unit/fs-conformance.ts";

export function buildVolume(items: readonly FixtureItem[]): Volume {
  const vol = new Volume();
  for (const item of items) {
    const path = `/${item.path}`;
    if (item.kind === "dir") vol.mkdirSync(path, { mode: item.mode });
    else if (item.kind === "file") vol.writeFileSync(path, item.data, { mode: item.mode });
    else if (item.kind === "symlink") vol.symlinkSync(item.target, path);
    else vol.linkSync(`/${item.existing}`, path);
  }
  return vol;
}
