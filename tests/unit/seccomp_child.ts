/**
 * Run by seccomp_test.ts in a child process: installs Floka's default filter (Docker's
 * default capabilities) on the main thread, then makes calls the filter refuses and calls
 * it allows, and prints what happened as JSON. Each refused call is one the kernel would
 * answer differently without the filter, so the answers show the filter at work.
 */
import { DEFAULT_CAPABILITIES } from "../../lib/capabilities.ts";
import { errnoName } from "../../lib/errno.ts";
import { compileFilter } from "../../lib/seccomp/bpf.ts";
import { defaultProfile } from "../../lib/seccomp/default_profile.ts";
import { prctl, setSeccompFilter } from "../../ffi/libc.ts";
import { PR_SET_NO_NEW_PRIVS } from "../../lib/linux.ts";

const libc = Deno.dlopen("libc.so.6", {
  __errno_location: { parameters: [], result: "pointer" },
  getpid: { parameters: [], result: "i32" },
  // long syscall(long n, long a, long b, long c, long d, long e)
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
}).symbols;

const SYS = {
  unshare: 272,
  mount: 165,
  keyctl: 250,
  personality: 135,
  clone3: 435,
  fchmodat2: 452,
  socket: 41,
};
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNS = 0x00020000;
const AF_VSOCK = 40;
const SOCK_STREAM = 1;

/** The raw syscall: true when it succeeded, else its errno's name. */
function call(nr: number, ...args: number[]): true | string {
  const padded = [...args, 0, 0, 0, 0, 0].slice(0, 5).map(BigInt) as [bigint, bigint, bigint, bigint, bigint];
  const result = libc.syscall(BigInt(nr), ...padded);
  if (result !== -1n) return true;
  return errnoName(new Deno.UnsafePointerView(libc.__errno_location()!).getInt32());
}

const report: Record<string, unknown> = {};
report.unshareUserBefore = call(SYS.unshare, CLONE_NEWUSER);

// As containerize with no-new-privileges: the flag lets a process install a filter without CAP_SYS_ADMIN.
prctl(PR_SET_NO_NEW_PRIVS, 1);
setSeccompFilter(compileFilter(defaultProfile(), DEFAULT_CAPABILITIES));

report.getpid = libc.getpid() === Deno.pid;
report.unshareUser = call(SYS.unshare, CLONE_NEWUSER);
report.unshareMount = call(SYS.unshare, CLONE_NEWNS);
report.mount = call(SYS.mount, 0, 0, 0, 0, 0);
report.keyctl = call(SYS.keyctl, 0);
report.personalityQuery = call(SYS.personality, 0xffffffff);
report.personalityNoRandomize = call(SYS.personality, 0x0040000);
report.clone3 = call(SYS.clone3, 0, 0);
report.fchmodat2 = call(SYS.fchmodat2, -1, 0, 0, 0);
report.vsock = call(SYS.socket, AF_VSOCK, SOCK_STREAM, 0);
report.readFile = Deno.readTextFileSync("/proc/self/status").includes("Seccomp:\t2");
// A child started from the filtered thread: glibc's posix_spawn meets clone3's ENOSYS and
// falls back to clone.
report.spawnTrue = new Deno.Command("true").outputSync().code;

console.log(JSON.stringify(report));
