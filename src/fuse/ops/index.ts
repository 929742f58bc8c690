// The opcode table: one handler per FUSE opcode of Linux 6.1, with the least argument bytes each needs.
// Opcodes not here get ENOSYS from the server; docs/opcodes.md says why for each.
import {
  FUSE_COMPAT_SETXATTR_IN_SIZE,
  FUSE_COMPAT_WRITE_IN_SIZE,
  FuseOpcode as O,
  fuse_access_in,
  fuse_batch_forget_in,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_entry_out,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_forget_in,
  fuse_fsync_in,
  fuse_getattr_in,
  fuse_getxattr_in,
  fuse_link_in,
  fuse_lk_in,
  fuse_lk_out,
  fuse_lseek_in,
  fuse_mkdir_in,
  fuse_mknod_in,
  fuse_open_in,
  fuse_open_out,
  fuse_read_in,
  fuse_release_in,
  fuse_rename2_in,
  fuse_rename_in,
  fuse_setattr_in,
} from "../abi.ts";
import { op, type Handler } from "./common.ts";
import * as dax from "./dax.ts";
import * as dir from "./dir.ts";
import * as file from "./file.ts";
import * as inode from "./inode.ts";
import * as lock from "./lock.ts";
import * as session from "./session.ts";
import * as xattr from "./xattr.ts";

/** A NUL-terminated name is at least one byte. */
const NAME = 1;
/** The reply of an opcode that makes or finds a node: one reference the guest must learn of. */
const ENTRY = fuse_entry_out.SIZE;

export const HANDLERS: Partial<Record<number, Handler>> = {
  [O.FUSE_INIT]: op(16, session.init), // fuse_init_in before 7.36 is 16 bytes
  [O.FUSE_DESTROY]: op(0, session.destroy),
  [O.FUSE_STATFS]: op(0, session.statfs),
  [O.FUSE_SYNCFS]: op(0, session.syncfs),

  [O.FUSE_LOOKUP]: op(NAME, inode.lookup, ENTRY),
  [O.FUSE_FORGET]: op(fuse_forget_in.SIZE, inode.forget),
  [O.FUSE_BATCH_FORGET]: op(fuse_batch_forget_in.SIZE, inode.batchForget),
  [O.FUSE_GETATTR]: op(fuse_getattr_in.SIZE, inode.getattr),
  [O.FUSE_SETATTR]: op(fuse_setattr_in.SIZE, inode.setattr),
  [O.FUSE_READLINK]: op(0, inode.readlink),
  [O.FUSE_ACCESS]: op(fuse_access_in.SIZE, inode.access),
  [O.FUSE_MKNOD]: op(fuse_mknod_in.SIZE + NAME, inode.mknod, ENTRY),
  [O.FUSE_MKDIR]: op(fuse_mkdir_in.SIZE + NAME, inode.mkdir, ENTRY),
  [O.FUSE_SYMLINK]: op(2 * NAME, inode.symlink, ENTRY),
  [O.FUSE_LINK]: op(fuse_link_in.SIZE + NAME, inode.link, ENTRY),
  [O.FUSE_UNLINK]: op(NAME, inode.unlink),
  [O.FUSE_RMDIR]: op(NAME, inode.rmdir),
  [O.FUSE_RENAME]: op(fuse_rename_in.SIZE + 2 * NAME, inode.rename),
  [O.FUSE_RENAME2]: op(fuse_rename2_in.SIZE + 2 * NAME, inode.rename2),

  [O.FUSE_OPEN]: op(fuse_open_in.SIZE, file.open, fuse_open_out.SIZE),
  [O.FUSE_CREATE]: op(fuse_create_in.SIZE + NAME, file.create, ENTRY + fuse_open_out.SIZE),
  [O.FUSE_TMPFILE]: op(fuse_create_in.SIZE, file.tmpfile, ENTRY + fuse_open_out.SIZE),
  [O.FUSE_READ]: op(fuse_read_in.SIZE, file.read),
  [O.FUSE_WRITE]: op(FUSE_COMPAT_WRITE_IN_SIZE, file.write),
  [O.FUSE_FLUSH]: op(fuse_flush_in.SIZE, file.flush),
  [O.FUSE_RELEASE]: op(fuse_release_in.SIZE, file.release),
  [O.FUSE_FSYNC]: op(fuse_fsync_in.SIZE, file.fsync),
  [O.FUSE_FALLOCATE]: op(fuse_fallocate_in.SIZE, file.fallocate),
  [O.FUSE_LSEEK]: op(fuse_lseek_in.SIZE, file.lseek),
  [O.FUSE_COPY_FILE_RANGE]: op(fuse_copy_file_range_in.SIZE, file.copyFileRange),

  [O.FUSE_GETLK]: op(fuse_lk_in.SIZE, lock.getlk, fuse_lk_out.SIZE),
  [O.FUSE_SETLK]: op(fuse_lk_in.SIZE, lock.setlk),
  [O.FUSE_SETLKW]: op(fuse_lk_in.SIZE, lock.setlkw),

  [O.FUSE_OPENDIR]: op(fuse_open_in.SIZE, dir.opendir, fuse_open_out.SIZE),
  [O.FUSE_READDIR]: op(fuse_read_in.SIZE, dir.readdir),
  [O.FUSE_READDIRPLUS]: op(fuse_read_in.SIZE, dir.readdirplus),
  [O.FUSE_RELEASEDIR]: op(fuse_release_in.SIZE, dir.releasedir),
  [O.FUSE_FSYNCDIR]: op(fuse_fsync_in.SIZE, dir.fsyncdir),

  [O.FUSE_GETXATTR]: op(fuse_getxattr_in.SIZE + NAME, xattr.getxattr),
  [O.FUSE_LISTXATTR]: op(fuse_getxattr_in.SIZE, xattr.listxattr),
  [O.FUSE_SETXATTR]: op(FUSE_COMPAT_SETXATTR_IN_SIZE + NAME, xattr.setxattr),
  [O.FUSE_REMOVEXATTR]: op(NAME, xattr.removexattr),

  // Argument sizes are checked inside: without a DAX window both are ENOSYS, whatever they carry.
  [O.FUSE_SETUPMAPPING]: op(0, dax.setupmapping),
  [O.FUSE_REMOVEMAPPING]: op(0, dax.removemapping),
};
