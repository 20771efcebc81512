/**
 * Entry of `floka supervise ROOT ID REPORT_FD [ROWS COLS]`, reached from main.ts before the CLI is
 * loaded: the detached supervisor of one container (see detach.ts and supervise.ts). It
 * reports on REPORT_FD once the command runs or could not start, then stays until the
 * container's process has ended for good.
 */
import * as libc from "../../ffi/libc.ts";
import { describeError, EXIT_FLOKA, FlokaError } from "../../lib/errors.ts";
import { ContainerStore } from "../containers/store.ts";
import { storeRoot } from "../store/root.ts";
import { CgroupManager } from "./cgroups.ts";
import type { StartReport } from "./detach.ts";
import { supervise } from "./supervise.ts";

export async function main(args: string[]): Promise<number> {
  const [root, id, fd, rows, cols] = args;
  const reportFd = Number(fd);
  let reported = false;
  const report = (value: StartReport) => {
    if (reported) return;
    reported = true;
    try {
      libc.writeAll(reportFd, new TextEncoder().encode(JSON.stringify(value) + "\n"));
    } catch {
      // The command line is gone (killed, EPIPE): the container runs on without it.
    } finally {
      libc.close(reportFd);
    }
  };
  const store = new ContainerStore(storeRoot(root));
  const { config } = store.find(id).record;
  try {
    await supervise(store, () => store.find(id), new CgroupManager(), {
      foreground: false,
      stdin: config.openStdin ?? false,
      terminal: config.tty ?? false,
      onStarted: (failure) => report(failure ?? { started: true }),
      // `floka run -it` attaches at once, with a terminal of that size.
      attachingTerminal: rows ? { rows: Number(rows), cols: Number(cols) } : undefined,
    });
    return 0;
  } catch (err) {
    const exitCode = err instanceof FlokaError ? err.exitCode : EXIT_FLOKA;
    report({ exitCode, message: describeError(err) });
    console.error(`floka supervise ${id}: ${describeError(err)}`);
    return exitCode;
  }
}
