// PCI type-0 configuration space with a capability chain, as bytes for the bus to serve.

export const PCI_CFG_SPACE_SIZE = 256;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAPABILITY_LIST = 0x34;
const FIRST_CAP = 0x40;

export interface PciHeader {
  vendorId: number;
  deviceId: number;
  revision: number;
  /** 24-bit class code: base class, subclass, programming interface. */
  classCode: number;
  subsystemVendorId: number;
  subsystemId: number;
  /** 1 = INTA#. */
  interruptPin: number;
}

/** Builds configuration space: the header, then each capability body chained from 0x40. */
export function buildConfigSpace(h: PciHeader, caps: { id: number; body: Uint8Array }[]): Uint8Array {
  const cfg = new Uint8Array(PCI_CFG_SPACE_SIZE);
  const v = new DataView(cfg.buffer);
  v.setUint16(0x00, h.vendorId, true);
  v.setUint16(0x02, h.deviceId, true);
  v.setUint16(0x06, caps.length ? PCI_STATUS_CAP_LIST : 0, true);
  v.setUint8(0x08, h.revision);
  v.setUint8(0x09, h.classCode & 0xff);
  v.setUint16(0x0a, h.classCode >>> 8, true);
  v.setUint16(0x2c, h.subsystemVendorId, true);
  v.setUint16(0x2e, h.subsystemId, true);
  v.setUint8(0x3d, h.interruptPin);

  let at = FIRST_CAP;
  let link = PCI_CAPABILITY_LIST;
  for (const cap of caps) {
    // A capability is: id, next pointer, body; each starts dword-aligned.
    const len = 2 + cap.body.length;
    if (at + len > PCI_CFG_SPACE_SIZE) throw new Error("PCI capabilities do not fit in configuration space");
    cfg[link] = at;
    cfg[at] = cap.id;
    cfg.set(cap.body, at + 2);
    link = at + 1;
    at = (at + len + 3) & ~3;
  }
  return cfg;
}
