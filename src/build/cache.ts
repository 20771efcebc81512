/**
 * The build cache: for each step a build has run, the state it produced, found by a key
 * that covers everything the step's result depends on (the parent state's key, the
 * instruction after expansion, the build arguments it sees, and the checksum of what it
 * copies). Entries live in `images/build-cache/<key>.json`, written atomically; an entry
 * whose layers have since been garbage-collected is a miss, and is pruned with them.
 */
import { type Digest, digestHex, sha256 } from "../../lib/digest.ts";
import { readJsonIfExists, writeJsonAtomic } from "../store/files.ts";
import type { ContentStore } from "../images/content_store.ts";
import { type BuildState, diffIds } from "./state.ts";

export class BuildCache {
  readonly dir: string;

  constructor(private readonly content: ContentStore) {
    this.dir = `${content.root}/build-cache`;
  }

  /** The key of a step: `parent` (the previous step's key) and what the step is. */
  static async key(parent: string, step: unknown): Promise<string> {
    return digestHex(await sha256(new TextEncoder().encode(JSON.stringify([parent, step]))));
  }

  /** The state a step of this key produced, when all its layers are still in the store. */
  get(key: string): BuildState | null {
    let state: BuildState | null;
    try {
      state = readJsonIfExists<BuildState>(`${this.dir}/${key}.json`);
    } catch {
      return null; // unreadable: rebuild, and the put that follows replaces it
    }
    return state && this.#complete(state) ? state : null;
  }

  put(key: string, state: BuildState): void {
    Deno.mkdirSync(this.dir, { recursive: true });
    writeJsonAtomic(`${this.dir}/${key}.json`, state);
  }

  /** Removes the entries whose layers are gone; returns how many. */
  prune(): number {
    let removed = 0;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch {
      return 0;
    }
    for (const entry of entries) {
      if (!entry.name.endsWith(".json")) continue;
      const key = entry.name.slice(0, -".json".length);
      if (this.get(key)) continue;
      try {
        Deno.removeSync(`${this.dir}/${entry.name}`);
        removed++;
      } catch { /* removed by another prune */ }
    }
    return removed;
  }

  /** The blobs and unpacked layers the cache refers to. */
  #complete(state: BuildState): boolean {
    const ids: Digest[] = diffIds(state);
    return ids.length === state.layers.length &&
      state.layers.every((l) => this.content.hasBlob(l.digest)) &&
      ids.every((id) => this.content.hasLayer(id));
  }
}
