/**
 * `--init`: a small init as the container's PID 1, which forwards signals to the command
 * and reaps orphaned processes. Floka uses the host's own, as Docker ships docker-init and
 * Podman uses catatonit: a static binary, bind-mounted read-only at /dev/init (on the
 * container's /dev tmpfs, so nothing is written into its layer).
 */
import { FlokaError } from "../../lib/errors.ts";
import type { Mount } from "../../lib/mount.ts";

/** Where an init can be found on the host, best first; each is statically linked. */
const CANDIDATES = ["/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static"];

export const INIT_PATH = "/dev/init";

/** The host's init binary; a clear error when there is none. */
export function findInitBinary(): string {
  for (const path of CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not this one */ }
  }
  throw new FlokaError(
    "--init needs catatonit or tini-static on the host (Debian packages catatonit or tini)",
  );
}

/** The init's mount, and the command line it runs `args` with. */
export function withInit(binary: string, args: string[]): { mount: Mount; args: string[] } {
  return {
    mount: { type: "bind", source: binary, target: INIT_PATH, options: ["rbind", "ro", "nosuid", "nodev"] },
    args: [INIT_PATH, "--", ...args],
  };
}
