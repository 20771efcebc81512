/**
 * Floka's default seccomp profile. It has the semantics of Docker's default (moby's
 * profiles/seccomp/default.json, as of 2025), written for x86_64, the one architecture
 * Floka compiles filters for:
 *
 * - anything not named here fails with EPERM;
 * - the calls ordinary programs make (a shell, apt, python, a server) are allowed;
 * - calls that reach beyond the container (mounts, namespaces, modules, the clock, reboot,
 *   kernel logs, BPF, ...) are allowed only to a container that holds the capability the
 *   kernel would check anyway, so `--cap-add` keeps working;
 * - some are never allowed, whatever the capabilities (Docker's answer to them is
 *   `--privileged`, which runs without a filter): the kernel keyring (keyctl, add_key,
 *   request_key: not namespaced), kexec_load/kexec_file_load, swapon/swapoff, pivot_root,
 *   userfaultfd, move_pages/migrate_pages, uselib, ustat, sysfs, _sysctl, nfsservctl and
 *   the obsolete or unimplemented ones;
 * - clone may not create namespaces and clone3 answers ENOSYS (so libc falls back to
 *   clone, whose flags a filter can see) unless the container holds CAP_SYS_ADMIN;
 *   personality is limited to the few personas programs really set; socket refuses AF_VSOCK
 *   (host/VM sockets are not namespaced).
 *
 * ptrace and process_vm_readv/writev are allowed to every container, as in Docker since
 * kernel 4.8, where ptrace can no longer be used to get around a seccomp filter; kcmp,
 * pidfd_getfd and process_madvise still need CAP_SYS_PTRACE.
 */
import {
  anyContainer,
  type SeccompAction,
  type SeccompArg,
  type SeccompProfile,
  type SeccompSyscallRule,
} from "./profile.ts";

/** Calls allowed to every container, grouped by what they are for (names separated by single spaces). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  files: [
    "access chdir chmod chown close close_range copy_file_range creat dup dup2 dup3 faccessat",
    "faccessat2 fadvise64 fallocate fchdir fchmod fchmodat fchown fchownat fcntl fdatasync flock",
    "fstat fstatfs fsync ftruncate futimesat getcwd getdents getdents64 lchown link linkat lseek lstat mkdir",
    "mkdirat mknod mknodat name_to_handle_at newfstatat open openat openat2 pread64 preadv preadv2",
    "pipe pipe2 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv rename renameat renameat2",
    "rmdir sendfile splice stat statfs statx symlink symlinkat sync sync_file_range syncfs tee",
    "truncate umask unlink unlinkat utime utimensat utimes vmsplice write writev",
  ],
  extendedAttributes: [
    "fgetxattr flistxattr fremovexattr fsetxattr getxattr lgetxattr listxattr llistxattr lremovexattr",
    "lsetxattr removexattr setxattr",
  ],
  waitingForEvents: [
    "epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait",
    "epoll_wait_old eventfd eventfd2 fanotify_mark inotify_add_watch inotify_init inotify_init1",
    "inotify_rm_watch poll ppoll pselect6 select signalfd signalfd4 timerfd_create timerfd_gettime",
    "timerfd_settime",
  ],
  asyncIo: [
    "io_cancel io_destroy io_getevents io_pgetevents io_setup io_submit io_uring_enter",
    "io_uring_register io_uring_setup ioctl ioprio_get ioprio_set",
  ],
  memory: [
    "brk madvise membarrier memfd_create memfd_secret mincore mlock mlock2 mlockall mmap mprotect",
    "mremap msync munlock munlockall munmap pkey_alloc pkey_free pkey_mprotect remap_file_pages",
  ],
  processes: [
    "capget capset execve execveat exit exit_group fork futex futex_waitv get_robust_list",
    "get_thread_area getcpu getpgid getpgrp getpid getppid getpriority getrlimit getrusage getsid",
    "gettid landlock_add_rule landlock_create_ruleset landlock_restrict_self pidfd_open",
    "pidfd_send_signal prctl prlimit64 process_mrelease restart_syscall rseq seccomp set_robust_list",
    "set_thread_area set_tid_address setpgid setpriority setrlimit setsid sysinfo times uname vfork",
    "wait4 waitid",
  ],
  scheduling: [
    "sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam",
    "sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam",
    "sched_setscheduler sched_yield",
  ],
  credentials: [
    "getegid geteuid getgid getgroups getresgid getresuid getuid setfsgid setfsuid setgid setgroups",
    "setregid setresgid setresuid setreuid setuid",
  ],
  signals: [
    "alarm kill pause rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn",
    "rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sigaltstack tgkill tkill",
  ],
  // Reading clocks and timers; adjtimex/clock_adjtime only change the clock with CAP_SYS_TIME.
  time: [
    "adjtimex clock_adjtime clock_getres clock_gettime clock_nanosleep getitimer gettimeofday",
    "nanosleep setitimer time timer_create timer_delete timer_getoverrun timer_gettime timer_settime",
  ],
  // socket itself is below: every address family but AF_VSOCK.
  sockets: [
    "accept accept4 bind connect getpeername getsockname getsockopt listen recvfrom recvmmsg recvmsg",
    "sendmmsg sendmsg sendto setsockopt shutdown socketpair",
  ],
  ipc: [
    "mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink msgctl msgget msgrcv",
    "msgsnd semctl semget semop semtimedop shmat shmctl shmdt shmget",
  ],
  randomness: [
    "getrandom",
  ],
};

/** Calls allowed to a container holding a capability: the one the kernel checks for them. */
const ALLOWED_WITH_CAPABILITY: Readonly<Record<string, string | readonly string[]>> = {
  CAP_DAC_READ_SEARCH: "open_by_handle_at",
  CAP_SYS_ADMIN: [
    "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr",
    "move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog",
    "umount umount2 unshare",
  ],
  CAP_SYS_BOOT: "reboot",
  CAP_SYS_CHROOT: "chroot",
  CAP_SYS_MODULE: "delete_module init_module finit_module",
  CAP_SYS_PACCT: "acct",
  CAP_SYS_PTRACE: "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
  CAP_SYS_RAWIO: "iopl ioperm",
  CAP_SYS_TIME: "settimeofday stime clock_settime",
  CAP_SYS_TTY_CONFIG: "vhangup",
  CAP_SYS_NICE: "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
  CAP_SYSLOG: "syslog",
  CAP_BPF: "bpf",
  CAP_PERFMON: "perf_event_open",
};

/** Every namespace flag of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000n;
const AF_VSOCK = 40n;
const ENOSYS = 38;

/**
 * personality(2) values programs set: PER_LINUX, PER_LINUX_32BIT, UNAME26,
 * UNAME26|PER_LINUX_32BIT, and 0xffffffff, which only queries the current persona.
 */
const PERSONAS = [0x0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn];

/** Floka's default profile, a fresh copy on each call (callers may change it). */
export function defaultProfile(): SeccompProfile {
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1, // EPERM
    architectures: ["SCMP_ARCH_X86_64"],
    archMap: [],
    syscalls: [
      rule(Object.values(ALLOWED).flatMap(words), "SCMP_ACT_ALLOW"),
      {
        ...rule(["ptrace", "process_vm_readv", "process_vm_writev"], "SCMP_ACT_ALLOW"),
        includes: { ...anyContainer(), minKernel: "4.8" },
      },
      rule(["socket"], "SCMP_ACT_ALLOW", [compare(0, "SCMP_CMP_NE", AF_VSOCK)]),
      ...PERSONAS.map((persona) =>
        rule(["personality"], "SCMP_ACT_ALLOW", [compare(0, "SCMP_CMP_EQ", persona)])
      ),
      {
        ...rule(["arch_prctl"], "SCMP_ACT_ALLOW"),
        includes: { ...anyContainer(), arches: ["amd64", "x32"] },
      },
      {
        ...rule(["modify_ldt"], "SCMP_ACT_ALLOW"),
        includes: { ...anyContainer(), arches: ["amd64", "x32", "x86"] },
      },
      ...Object.entries(ALLOWED_WITH_CAPABILITY).map(([cap, names]) => ({
        ...rule(words(names), "SCMP_ACT_ALLOW"),
        includes: { ...anyContainer(), caps: [cap] },
      })),
      // Without CAP_SYS_ADMIN: clone without namespace flags, and clone3 (whose flags sit in
      // memory a filter cannot read) answers "not implemented" so that libc falls back to clone.
      {
        ...rule(["clone"], "SCMP_ACT_ALLOW", [{
          index: 0,
          op: "SCMP_CMP_MASKED_EQ",
          value: CLONE_NAMESPACE_FLAGS,
          valueTwo: 0n,
        }]),
        excludes: { ...anyContainer(), caps: ["CAP_SYS_ADMIN"] },
      },
      {
        ...rule(["clone3"], "SCMP_ACT_ERRNO"),
        errnoRet: ENOSYS,
        excludes: { ...anyContainer(), caps: ["CAP_SYS_ADMIN"] },
      },
    ],
  };
}

function rule(names: readonly string[], action: SeccompAction, args: SeccompArg[] = []): SeccompSyscallRule {
  return { names: [...names], action, args, includes: anyContainer(), excludes: anyContainer() };
}

function compare(index: number, op: SeccompArg["op"], value: bigint): SeccompArg {
  return { index, op, value, valueTwo: 0n };
}

/** The names in lines of names separated by single spaces (a plain split: no RegExp to compile). */
function words(lines: string | readonly string[]): string[] {
  return (typeof lines === "string" ? lines : lines.join(" ")).split(" ");
}
