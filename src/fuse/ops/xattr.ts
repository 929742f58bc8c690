// Extended attributes: GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR (POSIX ACLs are system.posix_acl_*).
import { wait, type Op } from "../../vfs/awaitable.ts";
import { FUSE_COMPAT_SETXATTR_IN_SIZE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_SIZE_MAX, fuse_getxattr_in, fuse_getxattr_out, fuse_setxattr_in } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";
import { RequestError, nameAt, nodeIno, struct, u32 } from "./common.ts";

const encoder = new TextEncoder();

/** getxattr(2)/listxattr(2) sizing: size 0 asks how big; a buffer too small is ERANGE. */
function sized(r: FuseRequest, value: Uint8Array): Reply {
  const size = u32(r, fuse_getxattr_in.size);
  if (size === 0) {
    const out = struct(fuse_getxattr_out.SIZE);
    out.view.setUint32(fuse_getxattr_out.size, value.length, true);
    return out.bytes;
  }
  return value.length > size ? Errno.ERANGE : value;
}

const xattrName = (r: FuseRequest, at: number) => nameAt(r, at, XATTR_NAME_MAX);

export function* getxattr(s: Session, r: FuseRequest): Op<Reply> {
  const ino = nodeIno(s, r);
  return sized(r, yield* wait(s.fs.getxattr(ino, xattrName(r, fuse_getxattr_in.SIZE).name)));
}

export function* listxattr(s: Session, r: FuseRequest): Op<Reply> {
  const names = yield* wait(s.fs.listxattr(nodeIno(s, r)));
  const list = encoder.encode(names.map((n) => n + "\0").join(""));
  if (list.length > XATTR_LIST_MAX) return Errno.E2BIG;
  return sized(r, list);
}

export function* setxattr(s: Session, r: FuseRequest): Op<Reply> {
  const ino = nodeIno(s, r);
  // Without FUSE_SETXATTR_EXT (not negotiated) the kernel sends the 8-byte fuse_setxattr_in.
  const size = u32(r, fuse_setxattr_in.size);
  const flags = u32(r, fuse_setxattr_in.flags);
  const name = xattrName(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
  if (size > XATTR_SIZE_MAX) return Errno.E2BIG;
  if (name.next + size !== r.args.length) throw new RequestError(Errno.EINVAL);
  yield* wait(s.fs.setxattr(ino, name.name, r.args.slice(name.next, name.next + size), flags));
  return 0;
}

export function* removexattr(s: Session, r: FuseRequest): Op<Reply> {
  yield* wait(s.fs.removexattr(nodeIno(s, r), xattrName(r, 0).name));
  return 0;
}
