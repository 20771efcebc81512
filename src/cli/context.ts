/** What every command gets from the global options. */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { ContainerStore } from "../containers/store.ts";
import { ensureStoreDirs, storeRoot } from "../store/root.ts";

export interface GlobalOptions {
  root?: string;
  logLevel: string;
}

/** The container store named by `--root`/`FLOKA_ROOT`, its directories made if missing. */
export function openStore(globals: GlobalOptions): ContainerStore {
  const store = storeRoot(globals.root);
  ensureStoreDirs(store);
  return new ContainerStore(store);
}

/** Namespaces, mounts and cgroups need root; say so before anything is touched. */
export function requireRoot(command: string): void {
  if (libc.geteuid() !== 0) {
    throw new FlokaError(
      `floka ${command} needs root privileges to create namespaces, mounts and cgroups (try: sudo floka ${command} ...)`,
    );
  }
}

/** Registries reached over plain HTTP besides localhost and 127.0.0.0/8 (comma-separated). */
export function insecureRegistries(): string[] {
  return (Deno.env.get("FLOKA_INSECURE_REGISTRIES") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}
