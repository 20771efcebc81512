/**
 * Unpacks one image layer (a tar stream, gzip- or zstd-compressed or not) into a directory
 * of its own, which Floka later stacks with the image's other layers as an overlayfs lower
 * directory, and returns the layer's diff_id: the sha256 of the uncompressed tar stream,
 * which the image config lists and the caller checks.
 *
 * Whiteouts. An OCI layer deletes a file of the layers below with an empty `.wh.NAME` and
 * hides a whole lower directory with `.wh..wh..opq` inside it. overlayfs spells both
 * differently, so they are converted as containerd's overlay snapshotter does: `.wh.NAME`
 * becomes a character device 0:0 named NAME, and `.wh..wh..opq` in D becomes the xattr
 * `trusted.overlay.opaque=y` on D.
 *
 * Safety (DESIGN section 6): nothing outside the target is ever created, written, linked,
 * chmodded, chowned or deleted, whatever the archive says. Names are made relative to the
 * target, and a `..` that would climb out is refused (`lib/tar_safety.ts`). The unpacker
 * owns the target (it must be new or empty) and keeps a model of every name it has created,
 * so it knows without asking the file system whether a parent component is a real
 * directory; an entry whose parent is a symlink, or whose hardlink target goes through one,
 * is refused rather than followed. The last component is always removed before it is
 * created again (files are opened with O_EXCL, which never follows a symlink), and every
 * metadata call (lchown, utimensat with AT_SYMLINK_NOFOLLOW, lsetxattr) acts on the name
 * itself; chmod is never applied to a symlink. On any failure the whole target is removed,
 * by the thread that wrote there, before the failure is reported.
 *
 * Speed: the calling thread decompresses, and a worker thread running this same module
 * hashes the tar stream, parses it and writes the files, as `gzip -d` runs beside tar; a
 * pull unpacks several layers at once in a pool of such workers (UnpackWorkers), leaving
 * the calling thread free for the downloads. Only a small layer, when there is no pool, is
 * unpacked entirely on the calling thread. File contents are written with few, large
 * synchronous calls, and creating the files is most of the time: on ext4 each new inode
 * costs from 10 µs to half a millisecond (without a journal, ext4 skips inodes freed in the
 * last minute, one by one, when it picks a new one).
 */
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import type { Extract, Header } from "tar-stream";
import * as libc from "../../ffi/libc.ts";
import { type Digest, digestFromBytes } from "../../lib/digest.ts";
import { describeError, FlokaError, oneLine, SyscallError } from "../../lib/errors.ts";
import { S_IFCHR } from "../../lib/linux.ts";
import {
  checkDeviceNumbers,
  checkId,
  entryPath,
  parsePaxTime,
  paxXattrs,
  TarEntryError,
  type TarTime,
  timeOfDate,
  type Whiteout,
  whiteoutOf,
  xattrAllowed,
} from "../../lib/tar_safety.ts";

/** The diff_id (sha256) and byte count of a layer's uncompressed tar stream. */
export interface UnpackResult {
  diffId: Digest;
  size: number;
}

/** How to unpack: in a worker of `workers`, or as the layer's size suggests (`thread`). */
export interface UnpackOptions {
  /**
   * Worker threads to unpack in, for a caller that unpacks several layers at once (a pull):
   * each layer, whatever its size, then has its tar stream hashed, parsed and written in
   * one of them, and the calling thread only decompresses it.
   */
  workers?: UnpackWorkers;
  /**
   * Without `workers`: `auto` (the default) unpacks a small layer wholly on the calling
   * thread, and a large one in a worker thread started for it while the calling thread
   * decompresses, as `gzip -d` runs beside tar; `current` and `worker` force one way.
   */
  thread?: "auto" | "current" | "worker";
}

/**
 * Unpacks the layer `blob` into `target`, which must not exist or be an empty directory.
 * Throws a FlokaError naming the offending entry (or the broken stream) and removes
 * `target` when anything fails; it returns or throws only once nothing writes there any more.
 */
export async function unpackLayer(
  blob: ReadableStream<Uint8Array>,
  compression: Compression,
  target: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const root = target.replace(/\/+$/, "");
  try {
    prepareTarget(root);
  } catch (err) {
    await blob.cancel().catch(() => {});
    throw err;
  }
  if (options.workers) return await unpackInWorker(blob, compression, root, options.workers);
  const thread = options.thread ?? "auto";
  let input = blob;
  let here = thread === "current";
  if (thread === "auto") {
    try {
      ({ input, small: here } = await readAhead(blob));
    } catch (err) {
      removeQuietly(root);
      throw asFlokaError(err);
    }
  }
  if (here) return await unpackHere(input, compression, root);
  return await unpackInWorker(input, compression, root, null);
}

type Compression = "gzip" | "zstd" | "none";

/** Creates `root`, or checks that it is an empty real directory (then it is ours alone). */
function prepareTarget(root: string): void {
  const refuse = (why: string) =>
    new FlokaError(`cannot unpack a layer into ${JSON.stringify(root || "/")}: ${why}`);
  if (root === "") throw refuse("it is the root directory");
  let stat: Deno.FileInfo;
  try {
    stat = Deno.lstatSync(root);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw refuse(oneLine(describeError(err)));
    try {
      Deno.mkdirSync(root, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw refuse(oneLine(describeError(err)));
    }
    return;
  }
  if (!stat.isDirectory) throw refuse("it exists and is not a directory");
  for (const _ of Deno.readDirSync(root)) throw refuse("the directory is not empty");
}

/**
 * Unpacks on this thread: decompression, the diff_id's sha256, the tar parser and every
 * file-system call. On failure the target is removed before this throws.
 */
async function unpackHere(input: ReadableStream<Uint8Array>, compression: Compression, root: string) {
  try {
    const unpacker = new Unpacker(root);
    return await extractStream(compression === "none" ? input : inflate(input, compression), unpacker);
  } catch (err) {
    // Nothing is still writing: extractStream returns only once its consumer has stopped.
    removeQuietly(root);
    throw asFlokaError(err);
  }
}

function asFlokaError(err: unknown): FlokaError {
  return err instanceof FlokaError ? err : new FlokaError(oneLine(describeError(err)));
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // Never made, or already gone; otherwise the caller's error is the one that matters.
  }
}

// ---------------------------------------------------------------------------------------
// Unpacking in a worker thread.

/**
 * Without a pool of workers, a layer whose blob ends within this many bytes is unpacked
 * on the calling thread: below it, starting a worker (about 15 ms of the calling thread
 * and 50 ms of CPU for a new isolate that loads this module and Deno's Node layer) would
 * cost more than it saves.
 */
const WORKER_THRESHOLD = 4 * 1024 * 1024;

/** Reads ahead to learn whether the blob is small; the bytes read are replayed. */
async function readAhead(
  blob: ReadableStream<Uint8Array>,
): Promise<{ input: ReadableStream<Uint8Array>; small: boolean }> {
  const reader = blob.getReader();
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < WORKER_THRESHOLD) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      head.push(value);
      headBytes += value.length;
    }
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  }
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of head) controller.enqueue(chunk);
      head.length = 0;
      if (ended) controller.close();
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { input, small: ended };
}

/** The name that makes this module, loaded in a worker, serve unpackInWorker. */
const UNPACK_WORKER = "floka-layer-unpack";

/**
 * Messages between unpackInWorker and serveUnpack; chunks of the uncompressed tar stream
 * cross by transfer. A worker unpacks one layer at a time: `unpack` starts one, its tar
 * stream follows as `chunk`s and an `end`, or a `cancel`, which fails that stream. The
 * worker acknowledges each chunk as its tar parser takes it (`took`), and is sent more only
 * while fewer than INPUT_WINDOW bytes are untaken. Its last message for a layer is `done`
 * or `error`, sent once it has stopped writing and, after a failure, removed the target;
 * then it may be given the next layer.
 */
type ToWorker =
  | { unpack: { target: string } }
  | { chunk: Uint8Array }
  | { end: true }
  | { cancel: string };
type FromWorker =
  | { took: number }
  | { done: UnpackResult }
  | { error: string };

/** Bytes sent to a worker and not yet taken by its tar parser. */
const INPUT_WINDOW = 8 * 1024 * 1024;
/** Bytes cross in batches of about this size: each message has a cost. */
const BATCH = 1024 * 1024;

/** A worker thread running this module, and what it reports. */
class LayerWorker {
  readonly #worker = new Worker(import.meta.url, { type: "module", name: UNPACK_WORKER });
  /** Why the worker has died (an uncaught error there: a bug, not a bad layer), or null. */
  death: string | null = null;
  onMessage: (data: FromWorker) => void = () => {};
  onDeath: (why: string) => void = () => {};

  constructor() {
    this.#worker.onmessage = ({ data }: MessageEvent<FromWorker>) => this.onMessage(data);
    this.#worker.onerror = (event) => {
      // An uncaught error ends the worker's event loop: nothing runs there any more.
      event.preventDefault();
      this.death ??= oneLine(event.message);
      this.#worker.terminate();
      this.onDeath(this.death);
    };
  }

  post(message: ToWorker, transfer: Transferable[] = []): void {
    this.#worker.postMessage(message, transfer);
  }

  terminate(): void {
    this.death ??= "terminated";
    this.#worker.terminate();
  }
}

/**
 * A pool of worker threads for unpacking layers, started at once so that their start-up
 * overlaps the caller's first downloads, and each reused from layer to layer. Dispose of it
 * (`using`) once no unpackLayer with it is running: idle workers keep the process alive.
 */
export class UnpackWorkers implements Disposable {
  readonly #idle: LayerWorker[] = [];
  readonly #waiting: ((worker: LayerWorker) => void)[] = [];
  #count = 0;
  #closed = false;

  /** At most `size` workers, of which `prestart` start at once. */
  constructor(readonly size: number, prestart = size) {
    for (let i = 0; i < Math.min(prestart, size); i++) this.#idle.push(new LayerWorker());
    this.#count = this.#idle.length;
  }

  /** A live worker of the pool, once one is free. */
  take(): Promise<LayerWorker> {
    if (this.#closed) throw new Error("UnpackWorkers: used after it was disposed of");
    for (let worker = this.#idle.pop(); worker; worker = this.#idle.pop()) {
      if (!worker.death) return Promise.resolve(worker);
      this.#count--;
    }
    if (this.#count < this.size) {
      this.#count++;
      return Promise.resolve(new LayerWorker());
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Takes back a worker that take() handed out, when its layer is over. */
  give(worker: LayerWorker): void {
    if (worker.death) {
      this.#count--;
      const next = this.#waiting.shift();
      if (next) {
        this.#count++;
        next(new LayerWorker());
      }
      return;
    }
    const next = this.#waiting.shift();
    if (next) return next(worker);
    if (this.#closed) {
      worker.terminate();
      this.#count--;
      return;
    }
    this.#idle.push(worker);
  }

  [Symbol.dispose](): void {
    this.#closed = true;
    for (const worker of this.#idle.splice(0)) worker.terminate();
  }
}

/**
 * Unpacks `input` into `root` in a worker: one of `workers`, or else one started for it.
 * This thread decompresses, and the worker hashes, parses and writes the tar stream; in a
 * pull the workers are still the busier side (creating files is most of the work), and
 * decompressing there too was slower. The worker owns the target from its first message
 * on: whatever fails, this settles only after its last message for the layer, never while
 * it may still be writing there.
 */
async function unpackInWorker(
  input: ReadableStream<Uint8Array>,
  compression: Compression,
  root: string,
  workers: UnpackWorkers | null,
): Promise<UnpackResult> {
  let worker: LayerWorker;
  try {
    worker = workers ? await workers.take() : new LayerWorker();
  } catch (err) {
    await input.cancel().catch(() => {});
    removeQuietly(root);
    throw asFlokaError(err);
  }
  // Batches are this thread's own copies. The caller's stream may share its buffers (a
  // tee does), and a transfer would detach them: its chunks are copied.
  const borrowed = compression === "none";
  const source = borrowed ? input : inflate(input, compression).pipeThrough(batches(BATCH));
  const outcome = await new Promise<PromiseSettledResult<UnpackResult>>((settle) => {
    const reader = source.getReader();
    let settled = false;
    let inputFailure: { error: unknown } | null = null; // the cause to report
    let untaken = 0;
    let wakeFeeder = () => {};
    const finish = (result: PromiseSettledResult<UnpackResult>) => {
      if (settled) return;
      settled = true;
      worker.onMessage = () => {};
      worker.onDeath = () => {};
      reader.cancel().catch(() => {});
      wakeFeeder();
      settle(result);
    };
    const fail = (reason: FlokaError) => finish({ status: "rejected", reason });
    worker.onMessage = (data) => {
      if ("took" in data) {
        untaken -= data.took;
        wakeFeeder();
      } else if ("done" in data) {
        finish({ status: "fulfilled", value: data.done });
      } else {
        fail(inputFailure ? asFlokaError(inputFailure.error) : new FlokaError(data.error));
      }
    };
    worker.onDeath = (why) => {
      removeQuietly(root);
      fail(new FlokaError(`unpacking failed: ${why}`));
    };
    if (worker.death) return worker.onDeath(worker.death);
    worker.post({ unpack: { target: root } });
    const feed = async () => {
      for (;;) {
        while (untaken >= INPUT_WINDOW && !settled) await new Promise<void>((wake) => wakeFeeder = wake);
        if (settled) return;
        const { done, value } = await reader.read();
        if (settled) return;
        if (done) return worker.post({ end: true });
        untaken += value.length;
        const chunk = borrowed ? value.slice() : value;
        worker.post({ chunk }, [chunk.buffer as ArrayBuffer]);
      }
    };
    feed().catch((error) => {
      if (settled) return;
      // The worker stops, removes the target and then sends its last message.
      inputFailure = { error };
      worker.post({ cancel: oneLine(describeError(error)) });
    });
  });
  if (workers) workers.give(worker);
  else worker.terminate();
  if (outcome.status === "rejected") throw outcome.reason;
  return outcome.value;
}

/** The worker side of unpackInWorker: unpacks the layers it is sent, one after another. */
function serveUnpack(): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
    postMessage(message: FromWorker, transfer?: Transferable[]): void;
  };
  loadTarStream().catch(() => {}); // now, while the first layer is still on its way
  /** The input of the layer being unpacked; null between layers, when input is stale. */
  let job: { queue: Uint8Array[]; ended: boolean; failure: Error | null; wake(): void } | null = null;
  const start = (target: string) => {
    const current = { queue: [] as Uint8Array[], ended: false, failure: null as Error | null, wake() {} };
    job = current;
    const input = new ReadableStream<Uint8Array>({
      async pull(controller) {
        while (current.queue.length === 0 && !current.ended && !current.failure) {
          await new Promise<void>((resolve) => current.wake = resolve);
        }
        if (current.failure) throw current.failure;
        const chunk = current.queue.shift();
        if (chunk === undefined) return controller.close();
        scope.postMessage({ took: chunk.length });
        controller.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
    unpackHere(input, "none", target)
      .then(
        (done): FromWorker => ({ done }),
        (err): FromWorker => ({ error: asFlokaError(err).message }),
      )
      .then((last) => {
        job = null;
        scope.postMessage(last);
      });
  };
  scope.onmessage = ({ data }) => {
    if ("unpack" in data) return start(data.unpack.target);
    if (!job) return; // the rest of a layer that has already failed
    if ("chunk" in data) job.queue.push(data.chunk);
    else if ("end" in data) job.ended = true;
    else job.failure = new FlokaError(data.cancel);
    job.wake();
  };
}

/**
 * Joins chunks into fresh buffers of at least `size` bytes (the last may be shorter). They
 * are always copies, never the decompressor's own buffers, so they can be transferred.
 */
function batches(size: number): TransformStream<Uint8Array, Uint8Array> {
  let parts: Uint8Array[] = [];
  let length = 0;
  const emit = (out: TransformStreamDefaultController<Uint8Array>) => {
    if (length === 0) return;
    out.enqueue(concat(parts, length));
    parts = [];
    length = 0;
  };
  return new TransformStream({
    transform(chunk, out) {
      parts.push(chunk);
      length += chunk.length;
      if (length >= size) emit(out);
    },
    flush: emit,
  });
}

/** Decompressed bytes waiting to be read beyond which the decompressor is paused. */
const OUTPUT_QUEUE = 4 * 1024 * 1024;

/**
 * `input` decompressed with node:zlib's gunzip or zstd decompressor. gzip goes through
 * node:zlib rather than DecompressionStream because layers may be multi-member gzip
 * (eStargz writes one member per file), which DecompressionStream refuses.
 *
 * Left flowing, the decompressor emits all the output of an input chunk at once, and a zstd
 * "bomb" turns 64 KiB into gigabytes; so it is paused whenever OUTPUT_QUEUE bytes wait to
 * be read (reading it in paused mode throughout bounds memory too, but costs an event-loop
 * turn per chunk: zstd then ran at half speed). Deno's zstd decompressor reports neither a
 * truncated frame nor garbage after one, so zstd input also goes through ZstdFrames, which
 * checks the framing.
 */
export function inflate(
  input: ReadableStream<Uint8Array>,
  format: "gzip" | "zstd",
): ReadableStream<Uint8Array> {
  const options = { chunkSize: 128 * 1024 };
  const z = format === "gzip" ? zlib.createGunzip(options) : zlib.createZstdDecompress(options);
  const frames = format === "zstd" ? new ZstdFrames() : null;
  const reader = input.getReader();
  let error: FlokaError | null = null;
  let inputBytes = 0;
  let inputDone = false;
  let writing = false; // an input chunk is inside the decompressor
  let ended = false;
  const queue: Uint8Array[] = []; // output not yet read
  let queued = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  // These listeners stay for the decompressor's whole life: an 'error' event with no
  // listener would be thrown as an uncaught exception and end the process.
  z.on("error", (err: Error) => {
    error ??= new FlokaError(`${format} data is corrupt: ${oneLine(err.message)}`);
    poke();
  });
  z.on("data", (chunk: Uint8Array) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= OUTPUT_QUEUE) z.pause();
    poke();
  });
  z.on("end", () => {
    ended = true;
    poke();
  });
  let stopped = false;
  const stop = () => {
    stopped = true;
    z.destroy();
    reader.cancel().catch(() => {});
    poke();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        await next(controller);
      } catch (err) {
        stop();
        throw err;
      }
    },
    cancel() {
      stop();
    },
  }, { highWaterMark: 4 });

  async function next(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      if (error) throw error;
      if (stopped) return;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        if (queued < OUTPUT_QUEUE / 2 && z.isPaused()) z.resume();
        return controller.enqueue(chunk);
      }
      if (ended) return controller.close();
      if (!writing && !inputDone) {
        const { done, value } = await reader.read();
        if (done) {
          inputDone = true;
          if (inputBytes === 0) throw new FlokaError(`${format} data is empty`);
          frames?.end();
          z.end();
        } else {
          inputBytes += value.length;
          frames?.push(value);
          writing = true;
          z.write(value, () => {
            writing = false;
            poke();
          });
        }
        continue;
      }
      await new Promise<void>((resolve) => wake = resolve);
    }
  }
}

type ZstdField = "magic" | "descriptor" | "block" | "checksum" | "skippable";

/**
 * Walks the framing of a zstd stream (RFC 8878) without decompressing it: frame magic,
 * frame header, block headers up to the last block, checksum, and skippable frames. It
 * throws on anything that is not a frame and, at the end, when the input stops mid-frame.
 */
class ZstdFrames {
  #state: ZstdField = "magic";
  #need = 4; // bytes of the current little-endian field still to read
  #field = 0;
  #have = 0;
  #skip = 0; // bytes of block content (or skippable frame) still to pass over
  #checksum = false;
  #frames = 0;

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      this.#field += chunk[at++] * 2 ** (8 * this.#have++);
      if (this.#have === this.#need) {
        const value = this.#field;
        this.#field = this.#have = 0;
        this.#next(value);
      }
    }
  }

  end(): void {
    if (this.#state !== "magic" || this.#have !== 0 || this.#skip !== 0) {
      throw new FlokaError("zstd data is truncated");
    }
    if (this.#frames === 0) throw new FlokaError("zstd data is empty");
  }

  #expect(state: ZstdField, bytes: number): void {
    this.#state = state;
    this.#need = bytes;
  }

  #next(value: number): void {
    switch (this.#state) {
      case "magic":
        if (value === 0xfd2fb528) return this.#expect("descriptor", 1);
        if (value >>> 4 === 0x184d2a5) return this.#expect("skippable", 4);
        throw new FlokaError("zstd data is corrupt: not a zstd frame");
      case "descriptor": {
        if (value & 0x08) throw new FlokaError("zstd data is corrupt: reserved frame header bit set");
        const single = (value >> 5) & 1;
        const fcs = [single, 2, 4, 8][value >> 6];
        this.#checksum = (value & 0x04) !== 0;
        this.#skip = (single ? 0 : 1) + [0, 1, 2, 4][value & 3] + fcs; // window, dictionary id, content size
        return this.#expect("block", 3);
      }
      case "block": {
        const type = (value >> 1) & 3;
        const size = value >>> 3;
        if (type === 3 || size > 128 * 1024) {
          throw new FlokaError("zstd data is corrupt: invalid block header");
        }
        this.#skip = type === 1 ? 1 : size; // an RLE block stores its one byte
        if (!(value & 1)) return this.#expect("block", 3);
        if (this.#checksum) return this.#expect("checksum", 4);
        this.#frames++;
        return this.#expect("magic", 4);
      }
      case "checksum":
        this.#frames++;
        return this.#expect("magic", 4);
      case "skippable":
        this.#skip = value;
        this.#frames++;
        return this.#expect("magic", 4);
    }
  }
}

let tarStreamModule: Promise<typeof import("tar-stream")> | null = null;

/**
 * tar-stream, loaded on first use: a pull's calling thread, which only decompresses, never
 * needs it (it takes some 15 ms to load), and its workers load it as they start.
 */
function loadTarStream(): Promise<typeof import("tar-stream")> {
  return tarStreamModule ??= import("tar-stream");
}

/** Feeds the tar stream to tar-stream while the unpacker consumes its entries. */
async function extractStream(
  tarStream: ReadableStream<Uint8Array>,
  unpacker: Unpacker,
): Promise<UnpackResult> {
  const hash = createHash("sha256");
  let size = 0;
  const extract = (await loadTarStream()).extract();
  keepRawPax(extract);
  await runExtract(tarStream, extract, async () => {
    const entries = extract[Symbol.asyncIterator]();
    let last: string | null = null;
    try {
      for (;;) {
        let step: Awaited<ReturnType<typeof entries.next>>;
        try {
          step = await entries.next();
        } catch (err) {
          throw streamError(err, last);
        }
        if (step.done) break;
        const { header } = step.value;
        try {
          await unpacker.entry(header, step.value as AsyncIterable<Uint8Array>);
        } catch (err) {
          throw new FlokaError(`entry ${JSON.stringify(header.name)}: ${reason(err)}`);
        }
        last = header.name;
      }
      unpacker.finish();
    } finally {
      await entries.return?.();
    }
  }, {
    chunk(value) {
      hash.update(value);
      size += value.length;
    },
  });
  return { diffId: digestFromBytes(hash.digest()), size };
}

/**
 * Feeds `input` to tar-stream's `extract` while `consume` reads its entries, and settles
 * once both have ended. The first failure, wherever it happens, is the cause and is what
 * this throws: a broken stream (bad gzip, say) then also fails the consumer, with a less
 * telling error. `chunk` sees every input chunk; `readFailure` words a failure to read it.
 */
export async function runExtract(
  input: ReadableStream<Uint8Array>,
  extract: Extract,
  consume: () => Promise<void>,
  hooks: { chunk?: (chunk: Uint8Array) => void; readFailure?: (err: unknown) => unknown } = {},
): Promise<void> {
  const reader = input.getReader();
  let failure: { error: unknown } | null = null;
  const stop = (error: unknown) => {
    if (failure) return;
    failure = { error };
    extract.destroy(error instanceof Error ? error : undefined);
    reader.cancel().catch(() => {});
  };
  const feed = async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (failure) return;
        if (done) break;
        hooks.chunk?.(value);
        if (!extract.write(value)) await drained(extract);
        if (failure || extract.destroyed) return;
      }
      extract.end(undefined);
    } catch (err) {
      stop(hooks.readFailure ? hooks.readFailure(err) : err);
    }
  };
  await Promise.all([feed(), consume().catch(stop)]);
  if (failure) throw (failure as { error: unknown }).error;
}

/** Resolves when `extract` wants more input or has stopped. */
function drained(extract: Extract): Promise<void> {
  if (extract.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      extract.off("drain", done);
      extract.off("close", done);
      resolve();
    };
    extract.on("drain", done);
    extract.on("close", done);
  });
}

const RAW_PAX = Symbol("raw PAX header");

/**
 * tar-stream decodes PAX records as UTF-8 text, which destroys binary xattr values such as
 * `security.capability`. This keeps each PAX header's raw bytes next to the decoded record
 * (tar-stream 3.2.2 passes the decoded object on as `header.pax`), so xattrs are read from
 * the bytes. The version is pinned in deno.json; a tar-stream without the hook fails loudly.
 */
function keepRawPax(extract: Extract): void {
  const internals = extract as unknown as {
    _decodeLongHeader(buf: Uint8Array): void;
    _header: { type: string } | null;
    _pax: Record<string | symbol, unknown> | null;
  };
  const decode = internals._decodeLongHeader;
  if (typeof decode !== "function") throw new Error("tar-stream has no _decodeLongHeader: update keepRawPax");
  internals._decodeLongHeader = function (this: typeof internals, buf: Uint8Array) {
    decode.call(this, buf);
    if (this._header?.type === "pax-header" && this._pax) this._pax[RAW_PAX] = buf;
  };
}

// ---------------------------------------------------------------------------------------
// Errors.

/** A one-line reason for a failure while unpacking an entry. */
function reason(err: unknown): string {
  if (err instanceof FlokaError) return oneLine(err.message);
  const text = describeError(err);
  if (text === "Unexpected end of data") return "the tar stream is truncated";
  return oneLine(text);
}

/** An error of the tar parser between entries. */
function streamError(err: unknown, last: string | null): FlokaError {
  if (err instanceof FlokaError) return err;
  const after = last === null ? "" : ` after entry ${JSON.stringify(last)}`;
  const text = describeError(err);
  if (text === "Unexpected end of data") return new FlokaError(`the tar stream is truncated${after}`);
  if (text.startsWith("Invalid tar header") || text === "Invalid header") {
    return new FlokaError(`invalid tar header${after}: the layer is corrupt or not a tar stream`);
  }
  return new FlokaError(`tar stream${after}: ${oneLine(text)}`);
}

// ---------------------------------------------------------------------------------------
// The unpacker: applies entries to the target, keeping its model of the tree.

/**
 * What the unpacker has created at a name. `dir` nodes have children; `device` covers
 * character and block devices and FIFOs; `whiteout` is an overlayfs whiteout device.
 */
interface Node {
  kind: "dir" | "file" | "symlink" | "device" | "whiteout";
  children?: Map<string, Node>;
  /** A directory's mode and times, applied after everything inside it is written. */
  dirMeta?: { mode: number; atime: TarTime; mtime: TarTime };
}

/** The metadata of an entry, from its header and PAX records. */
interface Meta {
  uid: number;
  gid: number;
  mode: number;
  atime: TarTime;
  mtime: TarTime;
  xattrs: Map<string, Uint8Array>;
}

/** Files up to this size are gathered and written with one call; larger ones chunk by chunk. */
const SMALL_FILE = 1024 * 1024;

const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const EPERM = 1;
const EOPNOTSUPP = 95;
const OPAQUE = new Uint8Array([0x79]); // "y"

/**
 * Applies entries in archive order. Every file-system call is synchronous, on this thread:
 * measured here, async writes on Deno's thread pool were no faster (ext4 serializes file
 * creation in a directory, and the pool's hand-offs cost more than they overlap), and one
 * thread doing everything in order leaves no interleaving to reason about.
 */
class Unpacker {
  readonly #root: string;
  readonly #tree: Node = { kind: "dir", children: new Map() };
  /** Only root may give files away; as another user, ownership is left as tar does. */
  readonly #asRoot = libc.geteuid() === 0;

  constructor(root: string) {
    this.#root = root;
  }

  /** Applies one tar entry; `data` is its content, which must be consumed. */
  async entry(header: Header, data: AsyncIterable<Uint8Array>): Promise<void> {
    // tar-stream skips no content after a directory header, as Go's archive/tar, but its
    // stream for a directory whose size field is not 0 never ends: reading it hung forever.
    if (header.type === "directory") data = (async function* () {})();
    const parts = entryPath(header.name);
    const meta = metaOf(header);
    const whiteout = parts.length > 0 ? whiteoutOf(parts[parts.length - 1]) : null;
    if (whiteout) {
      await discard(data);
      return this.#whiteout(parts, whiteout, meta);
    }
    // tar-stream reports types it does not know as null, whatever its typings say.
    const type: string | null = header.type;
    switch (type) {
      case "file":
      case "contiguous-file":
        return await this.#file(parts, meta, data, header.size);
      case "directory":
        await discard(data);
        return this.#directory(parts, meta);
      case "symlink":
        await discard(data);
        return this.#symlink(parts, meta, header.linkname ?? "");
      case "link":
        await discard(data);
        return this.#hardlink(parts, header.linkname ?? "");
      case "character-device":
      case "block-device":
      case "fifo":
        await discard(data);
        return this.#device(parts, meta, type, header.devmajor, header.devminor);
      default:
        throw new TarEntryError(`unsupported entry type ${type === null ? "(unknown typeflag)" : type}`);
    }
  }

  /** Gives directories their modes and times, now that nothing more is written in them. */
  finish(): void {
    // Children first, then their directory: a directory's own mode must not stand in the
    // way of its children's updates.
    const order: [string, Node][] = [];
    const stack: [string, Node][] = [[this.#root, this.#tree]];
    while (stack.length > 0) {
      const [path, node] = stack.pop()!;
      order.push([path, node]);
      for (const [name, child] of node.children!) {
        if (child.kind === "dir") stack.push([`${path}/${name}`, child]);
      }
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const [path, node] = order[i];
      if (!node.dirMeta) continue;
      try {
        Deno.chmodSync(path, node.dirMeta.mode);
        libc.lutimens(path, node.dirMeta.atime, node.dirMeta.mtime);
      } catch (err) {
        const name = path === this.#root ? "." : path.slice(this.#root.length + 1);
        throw new FlokaError(`directory ${JSON.stringify(name)}: ${reason(err)}`);
      }
    }
  }

  async #file(parts: string[], meta: Meta, data: AsyncIterable<Uint8Array>, size: number): Promise<void> {
    const { parent, name, path } = this.#parentOf(parts, "a file");
    this.#clear(parent, name, path);
    parent.set(name, { kind: "file" });
    // O_EXCL (createNew) never follows a symlink, and mode 0600 holds until chown and
    // chmod have run: the final mode may be setuid, or the file a secret.
    // (Deno.writeFileSync would add an fchmod to the same mode.)
    const create = { createNew: true, write: true, mode: 0o600 } as const;
    if (size <= SMALL_FILE) {
      const chunks: Uint8Array[] = [];
      let length = 0;
      for await (const chunk of data) {
        chunks.push(chunk);
        length += chunk.length;
      }
      using file = Deno.openSync(path, create);
      writeAll(file, chunks.length === 1 ? chunks[0] : concat(chunks, length));
    } else {
      using file = Deno.openSync(path, create);
      for await (const chunk of data) writeAll(file, chunk);
    }
    this.#applyMeta(path, meta, "file");
  }

  #directory(parts: string[], meta: Meta): void {
    let node = this.#tree;
    let path = this.#root;
    if (parts.length > 0) {
      const at = this.#parentOf(parts, "a directory");
      path = at.path;
      const existing = at.parent.get(at.name);
      if (existing?.kind === "dir") {
        node = existing; // a directory entry for an existing directory updates its metadata
        if (this.#asRoot) libc.lchown(path, meta.uid, meta.gid);
      } else {
        this.#clear(at.parent, at.name, path);
        Deno.mkdirSync(path, { mode: 0o700 });
        node = { kind: "dir", children: new Map() };
        at.parent.set(at.name, node);
        this.#own(path, meta);
      }
    } else if (this.#asRoot) {
      libc.lchown(path, meta.uid, meta.gid); // the layer's root directory
    }
    setXattrs(path, meta.xattrs, "dir");
    node.dirMeta = { mode: meta.mode, atime: meta.atime, mtime: meta.mtime };
  }

  #symlink(parts: string[], meta: Meta, linkname: string): void {
    if (linkname === "") throw new TarEntryError("symlink has no target");
    if (linkname.includes("\0")) throw new TarEntryError("symlink target contains a NUL byte");
    const { parent, name, path } = this.#parentOf(parts, "a symlink");
    this.#clear(parent, name, path);
    // The link's text is stored, never resolved here: it may point anywhere, and only the
    // container will follow it, inside its own root.
    Deno.symlinkSync(linkname, path);
    parent.set(name, { kind: "symlink" });
    this.#applyMeta(path, meta, "symlink");
  }

  #hardlink(parts: string[], linkname: string): void {
    const { parent, name, path } = this.#parentOf(parts, "a hardlink");
    let targetParts: string[];
    try {
      targetParts = entryPath(linkname);
    } catch (err) {
      throw new TarEntryError(`hardlink target ${JSON.stringify(linkname)}: ${reason(err)}`);
    }
    const target = () => {
      const node = this.#lookup(targetParts, linkname);
      if (!node) throw new TarEntryError(`hardlink target ${JSON.stringify(linkname)} is not in the layer`);
      if (node.kind === "dir") {
        throw new TarEntryError(`hardlink target ${JSON.stringify(linkname)} is a directory`);
      }
      return node;
    };
    if (parent.get(name) === target()) return; // already the same file
    this.#clear(parent, name, path);
    const node = target(); // again: clearing may have removed it (it was inside a directory)
    // link(2) does not follow a symlink at the target: a link to a symlink is a symlink.
    Deno.linkSync(`${this.#root}/${targetParts.join("/")}`, path);
    parent.set(name, node);
  }

  #device(parts: string[], meta: Meta, type: string, major: number, minor: number): void {
    let mode = S_IFIFO;
    if (type !== "fifo") {
      checkDeviceNumbers(major, minor);
      mode = type === "block-device" ? S_IFBLK : S_IFCHR;
    } else {
      major = minor = 0;
    }
    const { parent, name, path } = this.#parentOf(parts, "a device");
    this.#clear(parent, name, path);
    libc.mknod(path, mode | 0o600, major, minor);
    parent.set(name, { kind: "device" });
    this.#applyMeta(path, meta, "device");
  }

  #whiteout(parts: string[], whiteout: Whiteout, meta: Meta): void {
    if (whiteout.kind === "ignore") return;
    const { parent, path } = this.#parentOf(parts, "a whiteout");
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (whiteout.kind === "opaque") {
      libc.lsetxattr(dir, "trusted.overlay.opaque", OPAQUE);
      return;
    }
    const victim = `${dir}/${whiteout.name}`;
    this.#clear(parent, whiteout.name, victim);
    libc.mknod(victim, S_IFCHR, 0, 0);
    parent.set(whiteout.name, { kind: "whiteout" });
    this.#own(victim, meta);
  }

  /**
   * The directory that will hold entry `parts` (whose last component is the entry's own
   * name), creating missing parents as root-owned 0755 directories like containerd. A
   * parent that is a symlink is refused, never followed.
   */
  #parentOf(parts: string[], what: string): { parent: Map<string, Node>; name: string; path: string } {
    if (parts.length === 0) throw new TarEntryError(`${what} cannot replace the layer's root directory`);
    let node = this.#tree;
    let path = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      path += "/" + parts[i];
      let child = node.children!.get(parts[i]);
      if (!child) {
        Deno.mkdirSync(path, { mode: 0o755 });
        child = { kind: "dir", children: new Map() };
        node.children!.set(parts[i], child);
      } else if (child.kind !== "dir") {
        const shown = JSON.stringify(parts.slice(0, i + 1).join("/"));
        throw new TarEntryError(
          child.kind === "symlink" ? `parent ${shown} is a symlink` : `parent ${shown} is not a directory`,
        );
      }
      node = child;
    }
    const name = parts[parts.length - 1];
    return { parent: node.children!, name, path: `${path}/${name}` };
  }

  /** The node at `parts`, through real directories only; undefined when absent. */
  #lookup(parts: string[], shown: string): Node | undefined {
    let node: Node | undefined = this.#tree;
    for (let i = 0; i < parts.length; i++) {
      if (node.kind !== "dir") {
        const through = JSON.stringify(parts.slice(0, i).join("/"));
        const what = node.kind === "symlink" ? "the symlink" : "the non-directory";
        throw new TarEntryError(`hardlink target ${JSON.stringify(shown)} goes through ${what} ${through}`);
      }
      node = node.children!.get(parts[i]);
      if (!node) return undefined;
    }
    return node;
  }

  /**
   * Gives what this unpacker has just created its owner. Made by root in a directory without
   * the setgid bit (modes are set at the end), it is root's already: most entries of most
   * layers need no call at all.
   */
  #own(path: string, meta: Meta): void {
    if (this.#asRoot && (meta.uid !== 0 || meta.gid !== 0)) libc.lchown(path, meta.uid, meta.gid);
  }

  /** Removes what an earlier entry created at `name` (tar semantics: a later entry wins). */
  #clear(parent: Map<string, Node>, name: string, path: string): void {
    const old = parent.get(name);
    if (!old) return;
    // A directory goes with its contents; recursive removal unlinks the symlinks inside
    // and never follows them.
    Deno.removeSync(path, { recursive: old.kind === "dir" });
    parent.delete(name);
  }

  /** Owner, mode, xattrs and times of a non-directory, in the only order that keeps them all. */
  #applyMeta(path: string, meta: Meta, kind: Node["kind"]): void {
    // chown clears setuid/setgid and security.capability, so it goes first.
    this.#own(path, meta);
    if (kind !== "symlink") Deno.chmodSync(path, meta.mode);
    setXattrs(path, meta.xattrs, kind);
    libc.lutimens(path, meta.atime, meta.mtime);
  }
}

/** An entry's owner, mode, times and xattrs, PAX records taking precedence. */
function metaOf(header: Header): Meta {
  const pax = (header.pax ?? null) as (Record<string, string> & { [RAW_PAX]?: Uint8Array }) | null;
  const mtime = (pax?.mtime !== undefined ? parsePaxTime(pax.mtime) : null) ?? timeOfDate(header.mtime);
  const xattrs = new Map<string, Uint8Array>();
  const raw = pax?.[RAW_PAX];
  if (raw) {
    for (const [name, value] of paxXattrs(raw)) if (xattrAllowed(name)) xattrs.set(name, value);
  }
  return {
    uid: checkId(pax?.uid !== undefined ? Number(pax.uid) : header.uid, "uid"),
    gid: checkId(pax?.gid !== undefined ? Number(pax.gid) : header.gid, "gid"),
    mode: header.mode & 0o7777,
    atime: (pax?.atime !== undefined ? parsePaxTime(pax.atime) : null) ?? mtime,
    mtime,
    xattrs,
  };
}

/**
 * Sets a layer's xattrs on `path` itself. `user.*` ones are best effort: Linux refuses them
 * on symlinks and device nodes, and some file systems have none.
 */
function setXattrs(path: string, xattrs: Map<string, Uint8Array>, kind: Node["kind"]): void {
  for (const [name, value] of xattrs) {
    try {
      libc.lsetxattr(path, name, value);
    } catch (err) {
      const optional = name.startsWith("user.") && err instanceof SyscallError &&
        (err.errno === EOPNOTSUPP || (err.errno === EPERM && kind !== "file" && kind !== "dir"));
      if (!optional) throw err;
    }
  }
}

async function discard(data: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of data) {
    // Content of an entry that has none worth keeping (tar-stream needs it read).
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
}

// Loaded as the decompression worker (see inWorker): serve requests. This comes last, so
// that everything the worker uses is initialized.
if ((globalThis as { name?: unknown }).name === UNPACK_WORKER) serveUnpack();
