/**
 * Persistent network namespaces, as `ip netns add` makes them: a namespace lives as long as
 * something refers to it, so a bind mount of its nsfs file onto `/run/floka/netns/<id>`
 * keeps it alive before any process is in it (the CNI plugins configure it there) and after
 * the container's last process is gone (they tear it down there).
 *
 * Namespaces are per thread (DESIGN section 4): the main thread alone unshares a new network
 * namespace, binds `/proc/thread-self/ns/net` (its own, not the process's), and goes back to
 * the host's namespace through an fd opened before. Every call is synchronous FFI on the
 * main thread, and nothing else runs on it meanwhile.
 */
import * as libc from "../../ffi/libc.ts";
import { SyscallError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";

export const NETNS_DIR = "/run/floka/netns";

export function netnsPath(id: string): string {
  return `${NETNS_DIR}/${id}`;
}

/** Creates the namespace file for container `id`; returns its path. */
export function createNetns(id: string): string {
  const path = netnsPath(id);
  Deno.mkdirSync(NETNS_DIR, { recursive: true, mode: 0o755 });
  // A file left by a killed Floka (with its namespace mounted): start from nothing.
  if (netnsExists(id)) removeNetns(id);
  libc.close(libc.open(path, L.O_RDONLY | L.O_CREAT | L.O_CLOEXEC, 0o444));
  const hostNs = libc.open("/proc/thread-self/ns/net", L.O_RDONLY | L.O_CLOEXEC);
  try {
    libc.unshare(L.CLONE_NEWNET);
    try {
      libc.mount("/proc/thread-self/ns/net", path, null, L.MS_BIND, null);
    } finally {
      // Back to the host's namespace before anything else runs on this thread.
      libc.setns(hostNs, L.CLONE_NEWNET);
    }
  } catch (err) {
    removeNetns(id);
    throw err;
  } finally {
    libc.close(hostNs);
  }
  return path;
}

/** Unmounts and removes the namespace file; nothing there is fine (idempotent). */
export function removeNetns(id: string): void {
  const path = netnsPath(id);
  // Mounts may be stacked there (a bind made twice): take off every one.
  for (let i = 0; i < 8; i++) {
    try {
      libc.umount2(path, L.MNT_DETACH);
    } catch (err) {
      if (err instanceof SyscallError && (err.errno === L.EINVAL || err.errno === L.ENOENT)) break;
      throw err;
    }
  }
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

export function netnsExists(id: string): boolean {
  try {
    Deno.lstatSync(netnsPath(id));
    return true;
  } catch {
    return false;
  }
}
