/**
 * The two primitives every piece of Floka state is written with: an atomic replace
 * (temp file in the same directory, fsync, rename) so a reader sees the old or the new file
 * and never half of one, and an advisory lock so two Floka processes never interleave a
 * read-modify-write.
 */

/** Replaces `path` with `text` atomically. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
    const data = new TextEncoder().encode(text);
    let done = 0;
    while (done < data.length) done += file.writeSync(data.subarray(done));
    file.syncDataSync();
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* the temp file was never made, or is already renamed */ }
    throw err;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Parsed JSON of `path`, or null when the file does not exist. */
export function readJsonIfExists<T>(path: string): T | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Runs `fn` holding an exclusive lock on `lockPath` (created if missing). */
export function withLock<T>(lockPath: string, fn: () => T): T {
  using file = Deno.openSync(lockPath, { read: true, write: true, create: true });
  file.lockSync(true);
  try {
    return fn();
  } finally {
    file.unlockSync();
  }
}

/** True when something (even a dangling symlink) exists at `path`. */
export function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** lstat of `path`, or null when nothing is there (or a parent is not a directory). */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return null;
    throw err;
  }
}
