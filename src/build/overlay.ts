/**
 * A build step's view of an image on the host: an overlay mount of the state's layers with
 * a fresh upper directory, so that COPY and ADD write through the image's own directories
 * and symlinks, and the upper directory then holds exactly the step's changes.
 */
import * as libc from "../../ffi/libc.ts";
import { MNT_DETACH } from "../../lib/linux.ts";

export interface MergedRoot {
  /** The merged file system, to read and write. */
  path: string;
  /** The changes written through `path`, in overlay form. */
  upper: string;
  /** Unmounts; the directories stay for the caller to read and remove. */
  unmount(): void;
}

/**
 * Mounts `lowerDirs` (top first) with a new upper directory under `dir`, which must be
 * new or empty. The lower directories are named through short relative links, as the runtime's
 * root mount does, so that mount(2)'s one page of options holds a hundred layers.
 */
export function mountMerged(dir: string, lowerDirs: readonly string[]): MergedRoot {
  Deno.mkdirSync(dir, { recursive: true });
  for (const sub of ["upper", "work", "merged", "l", "empty"]) {
    Deno.mkdirSync(`${dir}/${sub}`, { mode: 0o755 });
  }
  // overlayfs needs a lower directory even for `FROM scratch`.
  const lowers = lowerDirs.length ? lowerDirs : [`${dir}/empty`];
  lowers.forEach((lower, i) => Deno.symlinkSync(lower, `${dir}/l/${i}`));
  // Without redirects and metacopy the upper directory holds every changed byte itself.
  const options = `lowerdir=${lowers.map((_, i) => `l/${i}`).join(":")},upperdir=upper,workdir=work,` +
    "redirect_dir=off,metacopy=off";
  const cwd = Deno.cwd();
  // The relative names resolve against the working directory of the mount(2) call.
  Deno.chdir(dir);
  try {
    libc.mount("overlay", "merged", "overlay", 0, options);
  } finally {
    Deno.chdir(cwd);
  }
  let mounted = true;
  return {
    path: `${dir}/merged`,
    upper: `${dir}/upper`,
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        libc.umount2(`${dir}/merged`, 0);
      } catch {
        libc.umount2(`${dir}/merged`, MNT_DETACH); // something still has a file open there
      }
    },
  };
}
