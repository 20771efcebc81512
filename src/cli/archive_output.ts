/**
 * Where `floka save` and `floka export` write their tar: stdout (never a terminal), or
 * `-o FILE`, written next to the file and renamed at the end, so that a failure never
 * leaves half an archive under its name.
 */
import { FlokaError } from "../../lib/errors.ts";

export async function writeArchive(
  output: string | undefined,
  what: string,
  write: (out: { write(p: Uint8Array): Promise<number> }) => Promise<void>,
): Promise<void> {
  if (output === undefined || output === "-") {
    if (Deno.stdout.isTerminal()) {
      throw new FlokaError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    await write(Deno.stdout);
    return;
  }
  const tmp = `${output}.floka-${Deno.pid}.tmp`;
  let out: Deno.FsFile;
  try {
    out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  } catch (err) {
    throw new FlokaError(`failed to ${what}: unable to create ${output}: ${(err as Error).message}`);
  }
  try {
    await write(out);
    await out.syncData();
    out.close();
    Deno.renameSync(tmp, output);
  } catch (err) {
    try {
      out.close();
    } catch { /* closed already */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
    throw err;
  }
}
