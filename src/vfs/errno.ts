// Linux errno numbers (asm-generic numbering, as on x86): what a backend throws in an FsError and what a
// FUSE reply carries negated, whatever the host: never Node's os.constants.

/** Linux errno values (asm-generic numbering, as on x86); a reply carries `-errno`. */
export const Errno = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
  ECANCELED: 125,
} as const);
export type Errno = (typeof Errno)[keyof typeof Errno];
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
