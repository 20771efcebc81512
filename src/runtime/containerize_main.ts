/**
 * Entry of `floka containerize SPEC_FILE SYNC_FD`, reached from main.ts before the CLI is
 * loaded: read the spec, set the container up, exec. Kept apart from the step list so the
 * steps can be imported by tests without running anything.
 */
import { read, writeAll } from "../../ffi/libc.ts";
import { EXIT_FLOKA } from "../../lib/errors.ts";
import type { ContainerSpec, StartFailure } from "../../lib/spec.ts";
import { containerize } from "./containerize.ts";
import { linuxSys } from "./sys.ts";

export function main(args: string[]): never {
  const [specFile, fdText] = args;
  const syncFd = Number(fdText);
  let spec: ContainerSpec;
  try {
    spec = JSON.parse(Deno.readTextFileSync(specFile));
  } catch (err) {
    console.error(
      `floka containerize: cannot read the container spec ${specFile}: ${(err as Error).message}`,
    );
    Deno.exit(EXIT_FLOKA);
  }
  // The host writes one byte once this process is in the container's cgroup; end of file
  // means the host gave up (and has said why).
  if (read(syncFd, new Uint8Array(1)) !== 1) Deno.exit(EXIT_FLOKA);
  const report = (failure: StartFailure) => {
    try {
      writeAll(syncFd, new TextEncoder().encode(JSON.stringify(failure)));
    } catch {
      console.error(`floka: ${failure.message}`);
    }
  };
  containerize(spec, linuxSys, report);
}
