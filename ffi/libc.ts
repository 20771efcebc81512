/**
 * The libc calls Floka makes, through `Deno.dlopen`. This is the only module that touches
 * pointers, C strings and errno; everything above it sees plain values and `SyscallError`.
 *
 * Every call here is synchronous on purpose: namespaces, root and cwd belong to the calling
 * thread, and only the main JS thread is the one that later forks the container's process
 * (DESIGN section 4). errno is read right after the failing call, on that same thread.
 */
import { SyscallError } from "../lib/errors.ts";
import { EAGAIN, ECONNRESET, EINTR, SYS_PIVOT_ROOT } from "../lib/linux.ts";

const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" }, // int *__errno_location(void)
  unshare: { parameters: ["i32"], result: "i32" }, // int unshare(int flags)
  setns: { parameters: ["i32", "i32"], result: "i32" }, // int setns(int fd, int nstype)
  // int mount(const char *source, const char *target, const char *fstype,
  //           unsigned long flags, const void *data)
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" }, // int umount2(const char *target, int flags)
  syscall3: { name: "syscall", parameters: ["i64", "buffer", "buffer"], result: "i64" }, // long syscall(long n, ...)
  // The same syscall(2) for rt_sigaction(sig, act, oldact, sigsetsize).
  syscall_sigaction: {
    name: "syscall",
    parameters: ["i64", "i64", "buffer", "pointer", "i64"],
    result: "i64",
  },
  chroot: { parameters: ["buffer"], result: "i32" }, // int chroot(const char *path)
  chdir: { parameters: ["buffer"], result: "i32" }, // int chdir(const char *path)
  sethostname: { parameters: ["buffer", "usize"], result: "i32" }, // int sethostname(const char *name, size_t len)
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" }, // int mknod(const char *path, mode_t mode, dev_t dev)
  umask: { parameters: ["u32"], result: "u32" }, // mode_t umask(mode_t mask)
  // int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, struct sock_fprog *): the same call with a pointer.
  prctl_seccomp: { name: "prctl", parameters: ["i32", "u64", "buffer", "u64", "u64"], result: "i32" },
  // int capget(cap_user_header_t hdr, cap_user_data_t data), and capset with the same shape
  capget: { parameters: ["buffer", "buffer"], result: "i32" },
  capset: { parameters: ["buffer", "buffer"], result: "i32" },
  // int execve(const char *path, char *const argv[], char *const envp[])
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  geteuid: { parameters: [], result: "u32" }, // uid_t geteuid(void)
  getpgrp: { parameters: [], result: "i32" }, // pid_t getpgrp(void)
  tcgetpgrp: { parameters: ["i32"], result: "i32" }, // pid_t tcgetpgrp(int fd)
  setuid: { parameters: ["u32"], result: "i32" }, // int setuid(uid_t uid)
  setgid: { parameters: ["u32"], result: "i32" }, // int setgid(gid_t gid)
  setgroups: { parameters: ["usize", "buffer"], result: "i32" }, // int setgroups(size_t size, const gid_t *list)
  kill: { parameters: ["i32", "i32"], result: "i32" }, // int kill(pid_t pid, int sig)
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" }, // int socket(int domain, int type, int protocol)
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" }, // int ioctl(int fd, unsigned long req, void *arg)
  close: { parameters: ["i32"], result: "i32" }, // int close(int fd)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" }, // int open(const char *path, int flags, mode_t mode)
  // int close_range(unsigned int first, unsigned int last, int flags)
  close_range: { parameters: ["u32", "u32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2])
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" }, // int fcntl(int fd, int cmd, int arg)
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" }, // ssize_t read(int fd, void *buf, size_t count)
  // int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
  //                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
  posix_spawn: { parameters: ["buffer", "buffer", "pointer", "pointer", "buffer", "buffer"], result: "i32" },
  // int posix_spawn_file_actions_init(posix_spawn_file_actions_t *actions), and _destroy
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *actions, int fd, int newfd)
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // int posix_spawnattr_init(posix_spawnattr_t *attr), _destroy, and _setflags(attr, short flags)
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" }, // int pipe2(int pipefd[2], int flags)
  // pid_t waitpid(pid_t pid, int *status, int options); off the main thread: it waits
  waitpid_blocking: {
    name: "waitpid",
    parameters: ["i32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // The same read(2), on the host's side once poll says the descriptor is ready.
  read_ready: { name: "read", parameters: ["i32", "buffer", "usize"], result: "isize" },
  // Layer unpacking: calls that act on a path's last component itself, never on what a
  // symlink there points to (a layer's symlinks may point anywhere on the host).
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" }, // int lchown(const char *path, uid_t owner, gid_t group)
  // int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  // ssize_t llistxattr(const char *path, char *list, size_t size)
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // `floka exec`: joining a running container. setns(2) again, under another name, so that
  // `exec-inside` binds it without the 15 symbols of the host group.
  setns_exec: { name: "setns", parameters: ["i32", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" }, // int dup2(int oldfd, int newfd)
  // Pseudo-terminals.
  setsid: { parameters: [], result: "i32" }, // pid_t setsid(void)
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" }, // int fchown(int fd, uid_t owner, gid_t group)
  posix_openpt: { parameters: ["i32"], result: "i32" }, // int posix_openpt(int flags)
  unlockpt: { parameters: ["i32"], result: "i32" }, // int unlockpt(int fd)
  grantpt: { parameters: ["i32"], result: "i32" }, // int grantpt(int fd)
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" }, // int ptsname_r(int fd, char *buf, size_t len)
  // ioctl(2) whose argument is a plain integer (TIOCSCTTY, TIOCGPTPEER), not a pointer.
  ioctl_value: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int fd, struct msghdr *msg, int flags), off the main thread: it waits
  recvmsg_blocking: {
    name: "recvmsg",
    parameters: ["i32", "buffer", "i32"],
    result: "isize",
    nonblocking: true,
  },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout), off the main thread: it waits
  poll_blocking: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" }, // int tcgetattr(int fd, struct termios *t)
  // int tcsetattr(int fd, int when, const struct termios *t)
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" }, // void cfmakeraw(struct termios *t)
  flock: { parameters: ["i32", "i32"], result: "i32" }, // int flock(int fd, int operation)
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * Binding costs about 0.2 ms a symbol, and every container start runs two processes that
 * each need a different part of the table; so the table is bound in these groups, each on
 * its first use: what both sides use, what container setup (`containerize`) uses, what
 * the host side uses, and what unpacking image layers uses.
 */
const GROUPS: readonly (readonly (keyof typeof SYMBOLS)[])[] = [
  ["__errno_location", "unshare", "close", "write"],
  [
    "mount",
    "umount2",
    "syscall3",
    "syscall_sigaction",
    "chroot",
    "chdir",
    "sethostname",
    "mknod",
    "umask",
    "prctl",
    "prctl_seccomp",
    "capget",
    "capset",
    "execve",
    "setuid",
    "setgid",
    "setgroups",
    "socket",
    "ioctl",
    "close_range",
    "read",
  ],
  [
    "geteuid",
    "getpgrp",
    "tcgetpgrp",
    "setns",
    "kill",
    "open",
    "socketpair",
    "fcntl",
    "posix_spawn",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_destroy",
    "posix_spawn_file_actions_adddup2",
    "posix_spawnattr_init",
    "posix_spawnattr_destroy",
    "posix_spawnattr_setflags",
    "pipe2",
    "waitpid_blocking",
    "read_ready",
    "poll_blocking",
  ],
  // unpacking layers
  ["lchown", "utimensat", "lsetxattr", "lgetxattr", "llistxattr"],
  // `exec-inside`: entering a running container's namespaces
  ["setns_exec", "dup2"],
  // the container's end of a pseudo-terminal (`exec -t`)
  ["setsid", "fchown", "posix_openpt", "unlockpt", "ioctl_value", "sendmsg"],
  // the host's end of a pseudo-terminal
  ["grantpt", "ptsname_r", "recvmsg_blocking", "tcgetattr", "tcsetattr", "cfmakeraw"],
];

const bound: Partial<Symbols> = {};

/** The libc function `name`, binding its group on first use. */
function fn<K extends keyof typeof SYMBOLS>(name: K): Symbols[K] {
  if (!bound[name]) {
    const group = GROUPS.find((g) => g.includes(name)) ?? [name];
    const wanted = Object.fromEntries(group.filter((n) => !bound[n]).map((n) => [n, SYMBOLS[n]]));
    Object.assign(bound, Deno.dlopen("libc.so.6", wanted as typeof SYMBOLS).symbols);
  }
  return bound[name] as Symbols[K];
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of `s`, or null for a C NULL. */
export function cString(s: string | null): Uint8Array<ArrayBuffer> | null {
  if (s === null) return null;
  if (s.includes("\0")) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(s)}`);
  return encoder.encode(s + "\0");
}

/**
 * A NULL-terminated `char *[]` for execve. The returned `keep` array holds the strings the
 * pointers point into; the caller keeps it alive until the call returns.
 */
export function cStringArray(items: readonly string[]): {
  array: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array[];
} {
  const keep = items.map((s) => cString(s)!);
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((buf, i) => {
    array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  });
  return { array, keep };
}

/** errno of the call that just failed on this thread. */
function lastErrno(): number {
  const ptr = fn("__errno_location")();
  return new Deno.UnsafePointerView(ptr!).getInt32();
}

/** Throws a SyscallError when `result` is -1, else returns it. */
function check<T extends number | bigint>(result: T, call: string, args: readonly unknown[]): T {
  if (result === -1 || result === -1n) throw new SyscallError(call, args, lastErrno());
  return result;
}

export function unshare(flags: number): void {
  check(fn("unshare")(flags), "unshare", [hex(flags)]);
}

export function setns(fd: number, nstype: number): void {
  check(fn("setns")(fd, nstype), "setns", [fd, hex(nstype)]);
}

export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): void {
  const result = fn("mount")(
    cString(source),
    cString(target),
    cString(fstype),
    BigInt(flags),
    cString(data),
  );
  check(
    result,
    "mount",
    data ? [source, target, fstype, hex(flags), data] : [source, target, fstype, hex(flags)],
  );
}

export function umount2(target: string, flags: number): void {
  check(fn("umount2")(cString(target), flags), "umount2", [target, flags]);
}

export function pivotRoot(newRoot: string, putOld: string): void {
  const nr = SYS_PIVOT_ROOT[Deno.build.arch];
  check(fn("syscall3")(BigInt(nr), cString(newRoot), cString(putOld)), "pivot_root", [newRoot, putOld]);
}

/** rt_sigaction(2) numbers, by architecture. */
const SYS_RT_SIGACTION: Record<string, number> = { x86_64: 13, aarch64: 134 };

/**
 * Sets every signal's disposition to the default. execve keeps signals ignored, and the
 * Deno runtime ignores SIGPIPE (and others); a container's command must start as if from
 * a fresh init. The raw syscall reaches the signals glibc reserves for itself too.
 */
export function resetSignalDispositions(): void {
  const act = new Uint8Array(32); // handler SIG_DFL, no flags, no restorer, empty mask
  const nr = BigInt(SYS_RT_SIGACTION[Deno.build.arch]);
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue; // SIGKILL and SIGSTOP cannot be changed
    fn("syscall_sigaction")(nr, BigInt(sig), act, null, 8n); // EINVAL for a gap: nothing to reset
  }
}

export function chroot(path: string): void {
  check(fn("chroot")(cString(path)), "chroot", [path]);
}

export function chdir(path: string): void {
  check(fn("chdir")(cString(path)), "chdir", [path]);
}

export function sethostname(name: string): void {
  const bytes = encoder.encode(name);
  check(fn("sethostname")(bytes, BigInt(bytes.length)), "sethostname", [name]);
}

/** makedev(3) for Linux's dev_t encoding. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function mknod(path: string, mode: number, major: number, minor: number): void {
  check(fn("mknod")(cString(path), mode, makedev(major, minor)), "mknod", [
    path,
    oct(mode),
    `${major}:${minor}`,
  ]);
}

/** Sets the process umask and returns the previous one (umask cannot fail). */
export function umask(mask: number): number {
  return fn("umask")(mask);
}

export function prctl(option: number, arg2 = 0, arg3 = 0, arg4 = 0, arg5 = 0): number {
  const r = fn("prctl")(option, BigInt(arg2), BigInt(arg3), BigInt(arg4), BigInt(arg5));
  return check(r, "prctl", [option, arg2]);
}

const PR_SET_SECCOMP = 22;
const SECCOMP_MODE_FILTER = 2;

/**
 * Installs a seccomp filter (classic BPF, 8 bytes an instruction) on the calling thread
 * only: Deno's other threads stay unfiltered, and execve leaves just this one.
 */
export function setSeccompFilter(program: Uint8Array<ArrayBuffer>): void {
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const fprog = new Uint8Array(16);
  const view = new DataView(fprog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(program))), true);
  const r = fn("prctl_seccomp")(PR_SET_SECCOMP, BigInt(SECCOMP_MODE_FILTER), fprog, 0n, 0n);
  check(r, "prctl", ["PR_SET_SECCOMP", `${program.length / 8} instructions`]);
}

/** The capability sets, as bit masks over capability numbers. */
export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const CAP_VERSION_3 = 0x20080522;

function capHeader(): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(8); // struct { u32 version; int pid; }, pid 0: this thread
  new DataView(header.buffer).setUint32(0, CAP_VERSION_3, true);
  return header;
}

export function capget(): CapabilitySets {
  const data = new Uint8Array(24); // two { u32 effective, permitted, inheritable }: 64 bits each
  check(fn("capget")(capHeader(), data), "capget", []);
  const view = new DataView(data.buffer);
  const set = (offset: number) =>
    BigInt(view.getUint32(offset, true)) | BigInt(view.getUint32(offset + 12, true)) << 32n;
  return { effective: set(0), permitted: set(4), inheritable: set(8) };
}

export function capset(sets: CapabilitySets): void {
  const data = new Uint8Array(24);
  const view = new DataView(data.buffer);
  const put = (offset: number, mask: bigint) => {
    view.setUint32(offset, Number(mask & 0xffffffffn), true);
    view.setUint32(offset + 12, Number(mask >> 32n & 0xffffffffn), true);
  };
  put(0, sets.effective);
  put(4, sets.permitted);
  put(8, sets.inheritable);
  check(fn("capset")(capHeader(), data), "capset", []);
}

/** Replaces this process image. Returns only by throwing. */
export function execve(path: string, argv: readonly string[], env: readonly string[]): never {
  const args = cStringArray(argv);
  const envp = cStringArray(env);
  const r = fn("execve")(cString(path), args.array, envp.array);
  // `args` and `envp` (and so the strings they keep) are live until the call above is made.
  check(r, "execve", [path]);
  throw new Error("execve returned without an error");
}

export function geteuid(): number {
  return fn("geteuid")();
}

/** True when `fd` is a terminal whose foreground process group is this process's. */
export function isForegroundOnTerminal(fd: number): boolean {
  const pgrp = fn("tcgetpgrp")(fd);
  return pgrp !== -1 && pgrp === fn("getpgrp")();
}

export function setuid(uid: number): void {
  check(fn("setuid")(uid), "setuid", [uid]);
}

export function setgid(gid: number): void {
  check(fn("setgid")(gid), "setgid", [gid]);
}

export function setgroups(gids: readonly number[]): void {
  const list = new Uint32Array(gids.length || 1);
  list.set(gids);
  check(fn("setgroups")(BigInt(gids.length), list), "setgroups", [gids.join(",")]);
}

/** kill(2). Returns false when the process does not exist (ESRCH). */
export function kill(pid: number, signal: number): boolean {
  if (fn("kill")(pid, signal) === 0) return true;
  const errno = lastErrno();
  if (errno === 3) return false;
  throw new SyscallError("kill", [pid, signal], errno);
}

export const LOCK_EX = 2;
export const LOCK_NB = 4;

/**
 * flock(2) on `fd`, exclusive. Without `wait` it returns false when another open file
 * description holds the lock; with it, it blocks (on this thread) until the lock is free.
 */
export function flockExclusive(fd: number, wait: boolean): boolean {
  const r = fn("flock")(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  if (r === 0) return true;
  const errno = lastErrno();
  if (!wait && errno === 11) return false; // EWOULDBLOCK
  throw new SyscallError("flock", [fd], errno);
}

export function socket(domain: number, type: number, protocol: number): number {
  return check(fn("socket")(domain, type, protocol), "socket", [domain, type, protocol]);
}

/** ioctl(2) with a pointer argument that the kernel may read and write. */
export function ioctl(fd: number, request: number, arg: Uint8Array<ArrayBuffer>): void {
  check(fn("ioctl")(fd, BigInt(request), arg), "ioctl", [fd, hex(request)]);
}

export function open(path: string, flags: number, mode = 0): number {
  return check(fn("open")(cString(path), flags, mode), "open", [path, hex(flags)]);
}

export function close(fd: number): void {
  check(fn("close")(fd), "close", [fd]);
}

export function closeRange(first: number, last: number, flags: number): void {
  check(fn("close_range")(first, last, flags), "close_range", [first, last, flags]);
}

/**
 * Starts `path` with `argv` and `env` through posix_spawn(3), from this thread (so in the
 * namespaces this thread gives its children). The child inherits every file descriptor not
 * marked close-on-exec, the signal mask and ignored signals; `stdio` replaces its stdin,
 * stdout and stderr, and `newSession` detaches it from Floka's session and terminal.
 * Returns the child's PID.
 */
export function spawn(
  path: string,
  argv: readonly string[],
  env: readonly string[],
  stdio?: readonly [stdin: number, stdout: number, stderr: number],
  opts: { newSession?: boolean } = {},
): number {
  const pid = new Int32Array(1);
  const args = cStringArray(argv);
  const envp = cStringArray(env);
  // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; room to spare.
  const actions = stdio ? new Uint8Array(256) : null;
  if (actions) {
    checkZero(fn("posix_spawn_file_actions_init")(actions), "posix_spawn_file_actions_init", []);
  }
  const attr = opts.newSession ? new Uint8Array(512) : null;
  if (attr) {
    checkZero(fn("posix_spawnattr_init")(attr), "posix_spawnattr_init", []);
    checkZero(fn("posix_spawnattr_setflags")(attr, POSIX_SPAWN_SETSID), "posix_spawnattr_setflags", []);
  }
  try {
    stdio?.forEach((from, to) => {
      if (from === to) return;
      const err = fn("posix_spawn_file_actions_adddup2")(actions!, from, to);
      checkZero(err, "posix_spawn_file_actions_adddup2", [from, to]);
    });
    const err = fn("posix_spawn")(
      new Uint8Array(pid.buffer),
      cString(path),
      actions ? Deno.UnsafePointer.of(actions) : null,
      attr ? Deno.UnsafePointer.of(attr) : null,
      args.array,
      envp.array,
    );
    checkZero(err, "posix_spawn", [path]);
  } finally {
    if (actions) fn("posix_spawn_file_actions_destroy")(actions);
    if (attr) fn("posix_spawnattr_destroy")(attr);
  }
  return pid[0];
}

/** glibc's flag for a child that starts in a session of its own (setsid), off any terminal. */
const POSIX_SPAWN_SETSID = 0x80;

/** For the calls that return an error number rather than setting errno. */
function checkZero(err: number, call: string, args: unknown[]): void {
  if (err !== 0) throw new SyscallError(call, args, err);
}

/** pipe2(2): a pipe's [read end, write end]. */
export function pipe(flags: number): [number, number] {
  const fds = new Int32Array(2);
  check(fn("pipe2")(new Uint8Array(fds.buffer), flags), "pipe2", [hex(flags)]);
  return [fds[0], fds[1]];
}

/**
 * Reads `fd` until end of file without blocking the event loop, handing on each chunk. It
 * waits off the main thread and reads on it, where a failed read's errno can be seen (a
 * nonblocking call sets it on another thread).
 */
export async function readChunks(fd: number, each: (chunk: Uint8Array) => void): Promise<void> {
  for (;;) {
    if (await poll([{ fd, events: POLLIN }], -1) === null) continue; // EINTR
    const buf = new Uint8Array(16384);
    const n = Number(fn("read_ready")(fd, buf, BigInt(buf.length)));
    if (n < 0) {
      const errno = lastErrno();
      if (errno === EINTR || errno === EAGAIN) continue;
      // A socket whose peer closed with input unread reports ECONNRESET once the data
      // sent before is read (containerize failing before it read the host's last line).
      if (errno === ECONNRESET) return;
      throw new SyscallError("read", [fd], errno);
    }
    if (n === 0) return;
    each(buf.subarray(0, n));
  }
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number;
  signal: number | null;
}

/** Waits (off the main thread) for child `pid` to end and reaps it. */
export async function waitExit(pid: number): Promise<ExitStatus> {
  const status = new Int32Array(1);
  // For our own child only EINTR can make it fail (errno is set on another thread).
  for (
    let attempt = 0;
    await fn("waitpid_blocking")(pid, new Uint8Array(status.buffer), 0) !== pid;
    attempt++
  ) {
    if (attempt === 100) throw new Error(`waitpid(${pid}) keeps failing`);
  }
  const s = status[0];
  const signal = s & 0x7f;
  return signal === 0 ? { code: (s >> 8) & 0xff, signal: null } : { code: 128 + signal, signal };
}

/** socketpair(2): two connected sockets. */
export function socketpair(domain: number, type: number): [number, number] {
  const fds = new Int32Array(2);
  check(fn("socketpair")(domain, type, 0, new Uint8Array(fds.buffer)), "socketpair", [domain, hex(type)]);
  return [fds[0], fds[1]];
}

/** read(2) on the calling thread: the number of bytes read into `buf`, 0 at end of file. */
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(fn("read")(fd, buf, BigInt(buf.length)));
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== 4) throw new SyscallError("read", [fd], errno); // retry on EINTR
  }
}

export function fcntl(fd: number, cmd: number, arg: number): number {
  return check(fn("fcntl")(fd, cmd, arg), "fcntl", [fd, cmd, arg]);
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let done = 0;
  while (done < data.length) {
    const chunk = data.subarray(done);
    done += Number(check(fn("write")(fd, chunk, BigInt(chunk.length)), "write", [fd]));
  }
}

/** Reads `fd` until end of file without blocking the event loop. */
export async function readToEnd(fd: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await readChunks(fd, (chunk) => parts.push(chunk));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** A time for utimensat(2): whole seconds since the epoch (may be negative) and nanoseconds. */
export interface Timespec {
  sec: number;
  nsec: number;
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const ERANGE = 34;
const ENODATA = 61;

/** lchown(2): changes the owner of `path` itself; a symlink there is not followed. */
export function lchown(path: string, uid: number, gid: number): void {
  check(fn("lchown")(cString(path), uid, gid), "lchown", [path, uid, gid]);
}

/**
 * Sets the access and modification times of `path` itself (utimensat with
 * AT_SYMLINK_NOFOLLOW), so a symlink gets its own times and its target is never touched.
 */
export function lutimens(path: string, atime: Timespec, mtime: Timespec): void {
  const times = new BigInt64Array([
    BigInt(atime.sec),
    BigInt(atime.nsec),
    BigInt(mtime.sec),
    BigInt(mtime.nsec),
  ]);
  check(
    fn("utimensat")(AT_FDCWD, cString(path), new Uint8Array(times.buffer), AT_SYMLINK_NOFOLLOW),
    "utimensat",
    [path, mtime.sec],
  );
}

/** lsetxattr(2): sets extended attribute `name` of `path` itself (creating or replacing it). */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const copy = new Uint8Array(value.length || 1); // an ArrayBuffer-backed copy FFI can pass
  copy.set(value);
  check(
    fn("lsetxattr")(cString(path), cString(name), copy, BigInt(value.length), 0),
    "lsetxattr",
    [path, name],
  );
}

/** lgetxattr(2): extended attribute `name` of `path` itself, or null when it has none. */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const p = cString(path), n = cString(name);
  for (;;) {
    // Ask for the size, then read; retry if the value grew in between (ERANGE).
    const size = Number(fn("lgetxattr")(p, n, null, 0n));
    if (size === -1) {
      const errno = lastErrno();
      if (errno === ENODATA) return null;
      throw new SyscallError("lgetxattr", [path, name], errno);
    }
    const buf = new Uint8Array(size || 1);
    const got = Number(fn("lgetxattr")(p, n, buf, BigInt(buf.length)));
    if (got >= 0) return buf.subarray(0, got);
    const errno = lastErrno();
    if (errno !== ERANGE) throw new SyscallError("lgetxattr", [path, name], errno);
  }
}

/** llistxattr(2): the names of the extended attributes of `path` itself, in the kernel's order. */
export function llistxattr(path: string): string[] {
  const p = cString(path);
  for (;;) {
    // Ask for the size, then read; retry if the list grew in between (ERANGE).
    const size = Number(check(fn("llistxattr")(p, null, 0n), "llistxattr", [path]));
    if (size === 0) return [];
    const buf = new Uint8Array(size);
    const got = Number(fn("llistxattr")(p, buf, BigInt(buf.length)));
    if (got >= 0) return new TextDecoder().decode(buf.subarray(0, got)).split("\0").filter((n) => n !== "");
    const errno = lastErrno();
    if (errno !== ERANGE) throw new SyscallError("llistxattr", [path], errno);
  }
}

// --- `floka exec` and pseudo-terminals ------------------------------------------------------

/** setns(2), bound with `exec-inside`'s small group rather than the host's (see SYMBOLS). */
export function joinNamespace(fd: number, nstype: number): void {
  check(fn("setns_exec")(fd, nstype), "setns", [fd, hex(nstype)]);
}

/** dup2(2): makes `newFd` a copy of `oldFd` (without close-on-exec). */
export function dup2(oldFd: number, newFd: number): void {
  check(fn("dup2")(oldFd, newFd), "dup2", [oldFd, newFd]);
}

/** setsid(2): a new session and process group led by this process, with no controlling terminal. */
export function setsid(): number {
  return check(fn("setsid")(), "setsid", []);
}

export function fchown(fd: number, uid: number, gid: number): void {
  check(fn("fchown")(fd, uid, gid), "fchown", [fd, uid, gid]);
}

/** posix_openpt(3): a new pseudo-terminal master from this thread's /dev/ptmx. */
export function posixOpenpt(flags: number): number {
  return check(fn("posix_openpt")(flags), "posix_openpt", [hex(flags)]);
}

export function grantpt(fd: number): void {
  check(fn("grantpt")(fd), "grantpt", [fd]);
}

export function unlockpt(fd: number): void {
  check(fn("unlockpt")(fd), "unlockpt", [fd]);
}

/** ptsname_r(3): the path of the terminal whose master is `fd`. */
export function ptsname(fd: number): string {
  const buf = new Uint8Array(128);
  checkZero(fn("ptsname_r")(fd, buf, BigInt(buf.length)), "ptsname_r", [fd]);
  return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
}

/** ioctl(2) whose argument is an integer; returns the call's result. */
export function ioctlValue(fd: number, request: number, value: number): number {
  return check(fn("ioctl_value")(fd, BigInt(request), BigInt(value)), "ioctl", [fd, hex(request)]);
}

/** write(2) once, retried on EINTR: the number of bytes written, possibly fewer than given. */
export function write(fd: number, data: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(fn("write")(fd, data, BigInt(data.length)));
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== 4) throw new SyscallError("write", [fd], errno);
  }
}

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;

/** The address of `buf`, to store in a C struct. The caller keeps `buf` alive meanwhile. */
function address(buf: Uint8Array<ArrayBuffer> | BigUint64Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/**
 * A `struct msghdr` (LP64: x86_64 and aarch64 agree) with one iovec over `data` and
 * `control` as its ancillary data. `iov` must stay alive as long as the header is used.
 */
function messageHeader(
  data: Uint8Array<ArrayBuffer>,
  control: Uint8Array<ArrayBuffer>,
): { header: Uint8Array<ArrayBuffer>; iov: BigUint64Array<ArrayBuffer> } {
  const iov = new BigUint64Array([address(data), BigInt(data.length)]);
  const header = new Uint8Array(56);
  const view = new DataView(header.buffer);
  view.setBigUint64(16, address(iov), true); // msg_iov
  view.setBigUint64(24, 1n, true); // msg_iovlen
  view.setBigUint64(32, address(control), true); // msg_control
  view.setBigUint64(40, BigInt(control.length), true); // msg_controllen
  return { header, iov };
}

/**
 * Sends `data` (at least one byte) and a copy of file descriptor `fd` over the Unix socket
 * `sock` (SCM_RIGHTS): the receiver gets its own descriptor for the same open file.
 */
export function sendFd(sock: number, fd: number, data: Uint8Array<ArrayBuffer>): void {
  // CMSG_SPACE(sizeof(int)): a 16-byte cmsghdr, then the int, padded to 8 bytes.
  const control = new Uint8Array(24);
  const view = new DataView(control.buffer);
  view.setBigUint64(0, 20n, true); // cmsg_len = CMSG_LEN(sizeof(int))
  view.setInt32(8, SOL_SOCKET, true);
  view.setInt32(12, SCM_RIGHTS, true);
  view.setInt32(16, fd, true);
  const { header, iov } = messageHeader(data, control);
  const sent = Number(check(fn("sendmsg")(sock, header, 0), "sendmsg", [sock, fd]));
  keepAlive(iov, control);
  if (sent !== data.length) throw new SyscallError("sendmsg", [sock, fd], 5); // EIO: a short send
}

/**
 * Buffers that C structs point to are reachable from JavaScript only through these
 * variables; using them after the call keeps the garbage collector from freeing them first.
 */
function keepAlive(...buffers: ArrayBufferView[]): void {
  if (buffers.some((b) => b.byteLength < 0)) throw new Error("unreachable");
}

/**
 * Receives bytes into `buf` from the Unix socket `sock` without blocking the event loop,
 * with the file descriptor sent along with them (close-on-exec here), if any. 0 bytes is
 * end of file.
 */
export async function receiveWithFd(
  sock: number,
  buf: Uint8Array<ArrayBuffer>,
): Promise<{ bytes: number; fd: number | null }> {
  const control = new Uint8Array(64);
  const { header, iov } = messageHeader(buf, control);
  let n = -1;
  // errno of a nonblocking call is set on another thread: retry what can only be EINTR.
  for (let attempt = 0; n < 0; attempt++) {
    if (attempt === 100) throw new Error(`recvmsg(${sock}) keeps failing`);
    n = Number(await fn("recvmsg_blocking")(sock, header, MSG_CMSG_CLOEXEC));
  }
  keepAlive(iov, buf);
  const controlLength = Number(new DataView(header.buffer).getBigUint64(40, true));
  const cmsg = new DataView(control.buffer);
  const fds: number[] = [];
  if (
    controlLength >= 20 && cmsg.getInt32(8, true) === SOL_SOCKET && cmsg.getInt32(12, true) === SCM_RIGHTS
  ) {
    const length = Number(cmsg.getBigUint64(0, true));
    for (let at = 16; at + 4 <= length && at + 4 <= controlLength; at += 4) fds.push(cmsg.getInt32(at, true));
  }
  // One descriptor is expected; any more would only leak.
  fds.slice(1).forEach((extra) => fn("close")(extra));
  return { bytes: n, fd: fds[0] ?? null };
}

/** A terminal's settings (glibc's struct termios, 60 bytes; room to spare), as tcgetattr(3) gives them. */
export function tcgetattr(fd: number): Uint8Array<ArrayBuffer> {
  const termios = new Uint8Array(128);
  check(fn("tcgetattr")(fd, termios), "tcgetattr", [fd]);
  return termios;
}

/** tcsetattr(3) with TCSANOW: applies `termios` at once, keeping input typed ahead. */
export function tcsetattr(fd: number, termios: Uint8Array<ArrayBuffer>): void {
  const TCSANOW = 0;
  check(fn("tcsetattr")(fd, TCSANOW, termios), "tcsetattr", [fd]);
}

/** `termios` made raw by cfmakeraw(3): no echo, no line editing, no signals, no output processing. */
export function cfmakeraw(termios: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const raw = termios.slice();
  fn("cfmakeraw")(raw);
  return raw;
}

/** poll(2) events. */
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/**
 * poll(2) off the main thread: waits until one of `fds` is ready or `timeoutMs` passes (-1:
 * no limit). Returns each descriptor's revents (all 0 on timeout), or null when the call
 * failed, which for valid descriptors means a signal interrupted it (EINTR).
 */
export async function poll(
  fds: readonly { fd: number; events: number }[],
  timeoutMs: number,
): Promise<number[] | null> {
  const buf = new Uint8Array(8 * fds.length);
  const view = new DataView(buf.buffer);
  fds.forEach(({ fd, events }, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, events, true);
  });
  const n = await fn("poll_blocking")(buf, BigInt(fds.length), timeoutMs);
  if (n < 0) return null;
  return fds.map((_, i) => view.getUint16(8 * i + 6, true));
}

function hex(n: number): string {
  return "0x" + n.toString(16);
}

function oct(n: number): string {
  return "0o" + n.toString(8);
}
