/**
 * The host's device nodes, which a `--privileged` container gets in its /dev, as in
 * Docker: every character and block device below /dev, except the pseudo-terminals,
 * shared memory and message queues the container has instances of its own of, and the
 * host's console and ptmx (the container's /dev/ptmx must be its own devpts's).
 */
import type { DeviceNode } from "../../lib/spec.ts";

const SKIPPED_DIRS = new Set(["pts", "shm", "mqueue", "fd", ".udev", ".lxc", ".lxd-mounts"]);
const SKIPPED_NODES = new Set(["console", "ptmx"]);

export function hostDevices(dir = "/dev"): DeviceNode[] {
  const devices: DeviceNode[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) {
      if (!SKIPPED_DIRS.has(entry.name)) devices.push(...hostDevices(path));
      continue;
    }
    if (entry.isSymlink || SKIPPED_NODES.has(entry.name)) continue;
    const st = Deno.lstatSync(path);
    if (!st.isCharDevice && !st.isBlockDevice) continue;
    const rdev = st.rdev ?? 0;
    devices.push({
      path,
      // glibc's gnu_dev_major/minor split of the 32-bit device numbers the kernel reports.
      major: ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
      minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff),
      mode: (st.mode ?? 0) & 0o7777,
      ...(st.isBlockDevice ? { block: true } : {}),
    });
  }
  return devices;
}
