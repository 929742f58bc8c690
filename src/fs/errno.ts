// Linux errno numbers for the backends, from the one table in the FUSE ABI (src/fuse/abi.ts): the FUSE
// reply carries them negated, so they are Linux's values whatever the host: never Node's os.constants.
import { Errno } from "../fuse/abi.ts";

export { Errno };
export type ErrnoName = keyof typeof Errno;

export const {
  EPERM, ENOENT, EIO, ENXIO, E2BIG, EBADF, EAGAIN, ENOMEM, EACCES, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR,
  EISDIR, EINVAL, ENFILE, EMFILE, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, ERANGE, ENAMETOOLONG, ENOSYS,
  ENOTEMPTY, ELOOP, ENODATA, EOVERFLOW, EILSEQ, EOPNOTSUPP, EDQUOT, ESTALE,
} = Errno;

const names = new Map<number, ErrnoName>(Object.entries(Errno).map(([name, n]) => [n, name as ErrnoName]));

/** "ENOENT" for 2; "errno 123" for numbers not listed. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

/** The Linux errno for a symbolic code such as Node's `err.code`, if it is one listed. */
export function errnoFromCode(code: string): number | undefined {
  return Object.hasOwn(Errno, code) ? Errno[code as ErrnoName] : undefined;
}
