// The xterm.js terminal on the guest's serial console: it follows its box's size, and copies and pastes
// with Ctrl+Shift+C / Ctrl+Shift+V or the context menu (Ctrl+C and Ctrl+V belong to the guest).
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";

export function createTerminal(box: HTMLElement, onInput: (bytes: Uint8Array) => void): Terminal {
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, theme: { background: "#0b0f13" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  new ResizeObserver(() => fit.fit()).observe(box);

  const encoder = new TextEncoder();
  term.onData((s) => onInput(encoder.encode(s)));
  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey) return true;
    if (e.code === "KeyC" && term.hasSelection()) {
      e.preventDefault();
      void navigator.clipboard.writeText(term.getSelection());
      return false;
    }
    // The browser's own paste (Ctrl+Shift+V pastes as plain text) reaches xterm's paste handler.
    return e.code !== "KeyV";
  });
  return term;
}
