// Linux errno numbers (asm-generic, as the i386 guest sees them). The FUSE reply carries them negated, so
// they are Linux's values whatever the host platform: never take them from Node's `os.constants`.
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EOPNOTSUPP: 95,
  EDQUOT: 122,
  ESTALE: 116,
} as const;

export type ErrnoName = keyof typeof Errno;

export const {
  EPERM, ENOENT, EIO, ENXIO, EBADF, EAGAIN, ENOMEM, EACCES, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR,
  EINVAL, ENFILE, EMFILE, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, ERANGE, ENAMETOOLONG, ENOSYS,
  ENOTEMPTY, ELOOP, ENODATA, EOVERFLOW, EILSEQ, EOPNOTSUPP, EDQUOT, ESTALE,
} = Errno;

const names = new Map<number, ErrnoName>(Object.entries(Errno).map(([name, n]) => [n, name as ErrnoName]));

/** "ENOENT" for 2; "errno 123" for numbers not listed here. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

/** The Linux errno for a symbolic code such as Node's `err.code`, if it is one listed here. */
export function errnoFromCode(code: string): number | undefined {
  return Object.hasOwn(Errno, code) ? Errno[code as ErrnoName] : undefined;
}
