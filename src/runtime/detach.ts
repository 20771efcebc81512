/**
 * Detached containers (`floka run -d`, `floka start`): the supervisor is Floka started
 * again as `floka supervise`, in a session of its own so that it outlives the command line
 * and its terminal. The command line waits only until the supervisor says the container's
 * command runs (or why it could not start), as `docker run -d` does.
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { StartFailure } from "../../lib/spec.ts";
import { StartError } from "./run.ts";
import { selfCommand } from "./self_exec.ts";
import type { WindowSize } from "./pty.ts";

/** What the supervisor reports on its report pipe, one JSON line. */
export type StartReport = { started: true } | StartFailure;

/**
 * Starts a supervisor for the container `id` of the store at `root`; resolves once it
 * runs. `attachingTerminal`: a client with a terminal of that size attaches at once.
 */
export async function startDetached(
  root: string,
  containerDir: string,
  id: string,
  attachingTerminal?: WindowSize,
): Promise<void> {
  const [readEnd, writeEnd] = libc.pipe(L.O_CLOEXEC);
  const devNull = libc.open("/dev/null", L.O_RDWR | L.O_CLOEXEC);
  // Its own diagnostics, should it fail after the command line has gone, are kept here.
  const errors = libc.open(
    `${containerDir}/supervisor.log`,
    L.O_WRONLY | L.O_CREAT | L.O_APPEND | L.O_CLOEXEC,
    0o600,
  );
  try {
    libc.fcntl(writeEnd, L.F_SETFD, 0); // the one descriptor the supervisor inherits
    const size = attachingTerminal ? [String(attachingTerminal.rows), String(attachingTerminal.cols)] : [];
    const { program, args } = selfCommand(["supervise", root, id, String(writeEnd), ...size]);
    const env = Object.entries({ ...Deno.env.toObject(), DENO_NO_UPDATE_CHECK: "1" }).map(([k, v]) =>
      `${k}=${v}`
    );
    libc.spawn(program, [program, ...args], env, [devNull, devNull, errors], { newSession: true });
  } finally {
    libc.close(writeEnd);
    libc.close(devNull);
    libc.close(errors);
  }
  let text: string;
  try {
    text = new TextDecoder().decode(await libc.readToEnd(readEnd)).trim();
  } finally {
    libc.close(readEnd);
  }
  if (text === "") {
    throw new FlokaError(
      `the container's supervisor ended before the container started (see ${containerDir}/supervisor.log)`,
    );
  }
  const report = JSON.parse(text) as StartReport;
  if ("started" in report) return;
  throw new StartError(report.message, report.exitCode);
}
