/**
 * User-defined networks (`floka network create|ls|inspect|rm`) and the default one,
 * `floka` (bridge `floka0`), made on first use. Each is one JSON file,
 * `networks/NAME.json` under the store root, written atomically under `networks/.lock`.
 * A network's subnet is chosen when it is made so that it collides with none of the host's
 * routes nor another network; a bridge that already exists on the host (made by another
 * store, or left from before) keeps the subnet it has.
 */
import { FlokaError } from "../../lib/errors.ts";
import {
  chooseSubnet,
  IPAM_DATA_DIR,
  type NetworkConfig,
  overlaps,
  routesFromProcNetRoute,
  subnetGateway,
} from "../../lib/network.ts";
import { readJsonIfExists, withLock, writeJsonAtomic } from "../store/files.ts";
import type { StoreRoot } from "../store/root.ts";

export const DEFAULT_NETWORK = "floka";
export const DEFAULT_BRIDGE = "floka0";
/** Names `--network` takes that are not networks of their own. */
export const BUILTIN_MODES = ["none", "host"] as const;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** `bridge` (Docker's name for the default network) is Floka's `floka`. */
export function networkName(mode: string): string {
  return mode === "bridge" ? DEFAULT_NETWORK : mode;
}

/** The host interface name for a network's bridge (15 characters at most). */
export function bridgeName(name: string): string {
  if (name === DEFAULT_NETWORK) return DEFAULT_BRIDGE;
  return `fl-${fnv1a(name, 0x811c9dc5)}${fnv1a(name, 0x050c5d1f).slice(0, 4)}`;
}

/**
 * 32-bit FNV-1a of `text` from `seed`, as 8 hex digits: a stable short name, cheap and
 * synchronous (node:crypto would start Deno's Node layer, ~30 ms, on every command).
 */
function fnv1a(text: string, seed: number): string {
  let hash = seed;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** The IPv4 subnet of an existing host interface, or null. */
function interfaceSubnet(iface: string): string | null {
  const out = new Deno.Command("ip", { args: ["-j", "-4", "addr", "show", "dev", iface], stderr: "null" })
    .outputSync();
  if (!out.success) return null;
  try {
    const [info] = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      addr_info?: { local: string; prefixlen: number }[];
    }[];
    const a = info?.addr_info?.[0];
    return a ? `${a.local}/${a.prefixlen}` : null;
  } catch {
    return null;
  }
}

function hostRoutes(exceptBridge: string): string[] {
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/net/route");
  } catch { /* no routes to avoid */ }
  // Routes of the network's own bridge are not collisions.
  const own = text.split("\n").filter((l, i) => i === 0 || !l.startsWith(exceptBridge + "\t")).join("\n");
  return routesFromProcNetRoute(own);
}

export class NetworkStore {
  readonly dir: string;

  constructor(readonly store: StoreRoot) {
    this.dir = `${store.root}/networks`;
  }

  #lock<T>(fn: () => T): T {
    Deno.mkdirSync(this.dir, { recursive: true });
    return withLock(`${this.dir}/.lock`, fn);
  }

  #path(name: string): string {
    return `${this.dir}/${name}.json`;
  }

  get(name: string): NetworkConfig | null {
    if (!NAME_RE.test(name)) return null;
    return readJsonIfExists<NetworkConfig>(this.#path(name));
  }

  list(): NetworkConfig[] {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(this.dir)].filter((e) => e.name.endsWith(".json")).map((e) => e.name);
    } catch { /* no networks yet */ }
    return names.map((n) => readJsonIfExists<NetworkConfig>(`${this.dir}/${n}`)).filter((n) => n !== null)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The default network, made on first use. */
  defaultNetwork(): NetworkConfig {
    return this.get(DEFAULT_NETWORK) ??
      this.#lock(() => this.get(DEFAULT_NETWORK) ?? this.#make(DEFAULT_NETWORK));
  }

  /** The network `--network` names (`bridge` is the default one); a FlokaError when there is none. */
  resolve(mode: string): NetworkConfig {
    const name = networkName(mode);
    if (name === DEFAULT_NETWORK) return this.defaultNetwork();
    const net = this.get(name);
    if (!net) throw new FlokaError(`network ${name} not found`);
    return net;
  }

  create(name: string, subnet?: string): NetworkConfig {
    if ((BUILTIN_MODES as readonly string[]).includes(name) || name === "bridge") {
      throw new FlokaError(`${name} is a pre-defined network and cannot be created`);
    }
    if (!NAME_RE.test(name)) throw new FlokaError(`invalid network name ${JSON.stringify(name)}`);
    return this.#lock(() => {
      if (this.get(name)) throw new FlokaError(`network with name ${name} already exists`);
      return this.#make(name, subnet);
    });
  }

  /** Under the lock. */
  #make(name: string, wanted?: string): NetworkConfig {
    const bridge = bridgeName(name);
    const others = this.list().filter((n) => n.name !== name);
    const existing = interfaceSubnet(bridge);
    let subnet: string;
    if (wanted) {
      subnet = subnetGateway(wanted).subnet;
      const clash = [...others.map((n) => n.subnet), ...hostRoutes(bridge)].find((s) => overlaps(s, subnet));
      if (clash) {
        throw new FlokaError(
          `invalid pool request: Pool overlaps with other one on this address space (${clash})`,
        );
      }
    } else if (existing) {
      subnet = subnetGateway(existing).subnet;
    } else {
      subnet = chooseSubnet(hostRoutes(bridge), others.map((n) => n.subnet));
    }
    const net: NetworkConfig = {
      name,
      id: Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join(
        "",
      ),
      driver: "bridge",
      bridge,
      ...subnetGateway(subnet),
      created: new Date().toISOString(),
    };
    writeJsonAtomic(this.#path(name), net);
    return net;
  }

  /** Removes a network nobody uses (`inUse` lists the running containers on it). */
  remove(name: string, inUse: (name: string) => string[]): void {
    if (
      name === "bridge" || name === DEFAULT_NETWORK || (BUILTIN_MODES as readonly string[]).includes(name)
    ) {
      throw new FlokaError(`${name} is a pre-defined network and cannot be removed`);
    }
    this.#lock(() => {
      const net = this.get(name);
      if (!net) throw new FlokaError(`network ${name} not found`);
      const users = inUse(name);
      if (users.length) {
        throw new FlokaError(
          `error while removing network: network ${name} has active endpoints (${users.join(", ")})`,
        );
      }
      Deno.removeSync(this.#path(name));
      // The bridge goes with the network, as Docker's does, and so does host-local's
      // directory once it holds no lease (another store's network of this name may use it).
      new Deno.Command("ip", { args: ["link", "del", net.bridge], stdout: "null", stderr: "null" })
        .outputSync();
      const leases = `${IPAM_DATA_DIR}/${name}`;
      try {
        const entries = [...Deno.readDirSync(leases)].map((e) => e.name);
        if (entries.every((n) => n === "lock" || n.startsWith("last_reserved_ip"))) {
          Deno.removeSync(leases, { recursive: true });
        }
      } catch { /* no lease was ever taken */ }
    });
  }
}
