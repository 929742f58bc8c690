// What `virtiofs-web run --browser` and its page (web/headless/) say to each other over HTTP, under a
// random path prefix: the page reads its settings, calls the shared directory's FileSystem at `fs`, and
// posts events in order.

/** GET settings.json: the run the page is to make. */
export interface HeadlessSettings {
  exec: string;
  memoryMiB: number;
  append?: string;
  tag: string;
  cache: "never" | "metadata" | "auto" | "always";
  writeback: boolean;
  daxMiB?: number;
  /** Mount dax=inode: files of at least this many bytes in the window. */
  daxInodeMinSize?: number;
  /** The share is the CLI's directory, served at POST fs (src/fs/remote.ts calls); else the sample tree. */
  remoteShare: boolean;
  readOnly: boolean;
  /** Send the boot log (console events). */
  verbose: boolean;
}

/** POST event, one at a time, in remote.ts's JSON (bytes as base64). */
export type HeadlessEvent =
  | { kind: "stdout" | "stderr" | "console"; data: Uint8Array }
  | { kind: "done"; status: number }
  | { kind: "error"; message: string };
