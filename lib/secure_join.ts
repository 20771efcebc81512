/**
 * Resolves a path inside a container's root filesystem the way the kernel would after
 * chroot: `..` stops at the root and symlinks (absolute or relative) are resolved against
 * the root, never the host. Floka resolves every mount target and created file with it
 * before pivot_root, so an image with `/etc -> /` cannot make Floka write on the host.
 */

/** The two filesystem questions path resolution asks; the real ones are Deno's sync calls. */
export interface PathLookup {
  /** The link's target when `path` is a symlink, null when it is something else or absent. */
  readlinkIfSymlink(path: string): string | null;
}

export const hostLookup: PathLookup = {
  readlinkIfSymlink(path) {
    try {
      return Deno.lstatSync(path).isSymlink ? Deno.readLinkSync(path) : null;
    } catch (err) {
      if (
        err instanceof Deno.errors.NotFound ||
        err instanceof Deno.errors.NotADirectory
      ) return null;
      throw err;
    }
  },
};

const MAX_SYMLINKS = 40; // Linux's MAXSYMLINKS

/** Joins `unsafePath` to `root`, resolving symlinks within `root`. The result starts with `root`. */
export function secureJoin(
  root: string,
  unsafePath: string,
  fs: PathLookup = hostLookup,
): string {
  const base = root.replace(/\/+$/, "");
  let pending = unsafePath.split("/");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = base + "/" + [...resolved, part].join("/");
    const target = fs.readlinkIfSymlink(candidate);
    if (target === null) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new Error(
        `too many levels of symbolic links resolving ${unsafePath} in ${root}`,
      );
    }
    if (target.startsWith("/")) resolved.length = 0;
    pending = [...target.split("/"), ...pending];
  }
  return resolved.length ? base + "/" + resolved.join("/") : base;
}
