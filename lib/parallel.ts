/**
 * Runs `work` over `items`, at most `limit` at a time (layers of a pull or a push). The
 * first failure aborts `signal`, so the others stop early, and is thrown once every one
 * has settled and cleaned up after itself: returning sooner would let the process exit in
 * the middle of a temp file.
 */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const abort = new AbortController();
  let next = 0;
  const worker = async () => {
    while (!abort.signal.aborted && next < items.length) {
      try {
        await work(items[next++], abort.signal);
      } catch (err) {
        if (!abort.signal.aborted) abort.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (abort.signal.aborted) throw abort.signal.reason;
}
