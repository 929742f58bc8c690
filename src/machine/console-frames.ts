// Parses the guest console stream framed by guest/init (vfsw.nonce=N):
//   N:ready:<uptime>\n   the guest is up
//   N:out\n <stdout bytes> N:err\n <stderr bytes> N:end:<status>\n
//   N:halt\n             the guest halts
//   N:fail:<reason>\n    init could not do what the command line asked (a mount failed); it halts next
// Bytes outside a command frame are console text (boot log, interactive shell). Stdout is delivered as
// it arrives, holding back only what could be the start of the next marker.

export interface FrameEvents {
  console?(bytes: Uint8Array): void;
  ready?(uptimeSeconds: number): void;
  stdout?(bytes: Uint8Array): void;
  end?(stderr: Uint8Array, status: number): void;
  halt?(): void;
  fail?(reason: string): void;
}

type State = "console" | "out" | "err";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

export class ConsoleFrames {
  private readonly marker: Uint8Array;
  private buf: Uint8Array = new Uint8Array(0);
  private state: State = "console";
  private stderr: Uint8Array[] = [];

  constructor(
    nonce: string,
    private readonly events: FrameEvents,
  ) {
    this.marker = encoder.encode(`${nonce}:`);
  }

  push(bytes: Uint8Array): void {
    this.buf = this.buf.length ? concat(this.buf, bytes) : bytes;
    while (this.step()) {
      // each step consumes one marker line or flushes what cannot hold one
    }
  }

  /** Handles one marker line if a whole one is buffered; otherwise flushes safe bytes and returns false. */
  private step(): boolean {
    const at = indexOf(this.buf, this.marker);
    if (at < 0) {
      // Keep a tail that could be the start of a marker; everything before it is final.
      const keep = this.markerPrefixAtEnd();
      this.emit(this.buf.subarray(0, this.buf.length - keep));
      this.buf = this.buf.slice(this.buf.length - keep);
      return false;
    }
    const nl = this.buf.indexOf(10, at + this.marker.length);
    if (nl < 0) {
      this.emit(this.buf.subarray(0, at));
      this.buf = this.buf.slice(at);
      return false;
    }
    this.emit(this.buf.subarray(0, at));
    // Before init turns off the tty's \n -> \r\n (a failure at boot), a marker line ends in \r.
    const end = this.buf[nl - 1] === 13 ? nl - 1 : nl;
    const word = decoder.decode(this.buf.subarray(at + this.marker.length, end));
    this.buf = this.buf.slice(nl + 1);
    this.onMarker(word);
    return true;
  }

  /** Length of the longest tail of buf that is a proper prefix of the marker. */
  private markerPrefixAtEnd(): number {
    const b = this.buf;
    for (let k = Math.min(b.length, this.marker.length - 1); k > 0; k--) {
      let j = 0;
      while (j < k && b[b.length - k + j] === this.marker[j]) j++;
      if (j === k) return k;
    }
    return 0;
  }

  private onMarker(word: string): void {
    const [kind, arg] = word.split(":", 2);
    switch (kind) {
      case "ready":
        // A fresh boot (the first, or after a reboot that cut a command short).
        this.state = "console";
        this.events.ready?.(Number(arg));
        break;
      case "out":
        this.state = "out";
        this.stderr = [];
        break;
      case "err":
        this.state = "err";
        break;
      case "end": {
        this.state = "console";
        const err = this.stderr.reduce(concat, new Uint8Array(0));
        this.stderr = [];
        this.events.end?.(err, Number(arg));
        break;
      }
      case "halt":
        this.events.halt?.();
        break;
      case "fail":
        this.events.fail?.(word.slice("fail:".length)); // the reason may hold ':'
        break;
    }
  }

  private emit(bytes: Uint8Array): void {
    if (!bytes.length) return;
    const copy = bytes.slice();
    if (this.state === "out") this.events.stdout?.(copy);
    else if (this.state === "err") this.stderr.push(copy);
    else this.events.console?.(copy);
  }
}
