/**
 * Where Floka keeps its data: `--root DIR`, else `FLOKA_ROOT`, else the current directory,
 * holding `images/` and `containers/` (the layout the seed's users know).
 */
import { FlokaError } from "../../lib/errors.ts";

export interface StoreRoot {
  root: string;
  images: string;
  containers: string;
}

/** Makes `path` absolute against the current directory and drops trailing slashes. */
export function absolutePath(path: string): string {
  const abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const parts: string[] = [];
  for (const p of abs.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return "/" + parts.join("/");
}

export function storeRoot(option?: string): StoreRoot {
  const root = absolutePath(option ?? Deno.env.get("FLOKA_ROOT") ?? ".");
  return { root, images: `${root}/images`, containers: `${root}/containers` };
}

/** Creates the store's directories, with an error that says which one could not be made. */
export function ensureStoreDirs(store: StoreRoot): void {
  for (const dir of [store.images, store.containers]) {
    try {
      Deno.mkdirSync(dir, { recursive: true });
      Deno.statSync(dir);
    } catch (err) {
      throw new FlokaError(
        `cannot use ${dir} as Floka's store: ${(err as Error).message} (set --root or FLOKA_ROOT)`,
      );
    }
  }
}
