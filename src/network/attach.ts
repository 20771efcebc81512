/**
 * A container's process on a network of its own (`--network bridge` or a user-defined
 * one), Podman's way: before the process may run, a persistent network namespace is made
 * and the CNI plugins (bridge, portmap, firewall) add the container to it; when it ends (at
 * every end, restarts included) they delete it again and the namespace goes. The state of
 * the attachment is kept in the container's `state.network`, so that a container whose
 * Floka was killed is cleaned up by the next command that reconciles it.
 */
import { FlokaError } from "../../lib/errors.ts";
import {
  CNI_VERSION,
  type CniSummary,
  conflist,
  IPAM_DATA_DIR,
  isIPv4,
  type NetworkConfig,
  type PortBinding,
  summarizeResult,
} from "../../lib/network.ts";
import type { ContainerRecord } from "../containers/store.ts";
import type { StoreRoot } from "../store/root.ts";
import { cniAdd, cniDel, cniDelSync, type CniInvocation } from "./cni.ts";
import { createNetns, netnsPath, removeNetns } from "./netns.ts";
import { releaseInBackground, settleRelease, sweepReleases } from "./release.ts";
import { networkName, NetworkStore } from "./networks.ts";
import { debug } from "../log.ts";

/** What `state.network` holds while the process runs (and what a later DEL needs). */
export interface NetworkState extends Partial<CniSummary> {
  /** The network's name (`floka` for Docker's `bridge`). */
  name: string;
  netns: string;
  /** The network as it was when the container joined it (its CNI list is rebuilt from it). */
  config: NetworkConfig;
  ports: PortBinding[];
  /** The CNI result of the ADD, given back to the plugins at DEL. */
  result?: unknown;
}

/** True for the modes that give a container a network namespace Floka attaches to a network. */
export function ownNetwork(mode: string): boolean {
  return mode !== "none" && mode !== "host";
}

/** Refuses a published TCP port something on the host already listens on (bind, then close). */
export function checkPortsFree(ports: readonly PortBinding[]): void {
  for (const p of ports) {
    if (p.protocol !== "tcp") continue;
    try {
      Deno.listen({ hostname: p.hostIp || "0.0.0.0", port: p.hostPort, transport: "tcp" }).close();
    } catch (err) {
      throw new FlokaError(
        `driver failed programming external connectivity: Bind for ${
          p.hostIp || "0.0.0.0"
        }:${p.hostPort} failed: port is already allocated (${(err as Error).message})`,
      );
    }
  }
}

/** A free host TCP port, chosen by the kernel (bind port 0, close). */
export function freeHostPort(hostIp = ""): number {
  const l = Deno.listen({ hostname: hostIp || "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function invocation(state: NetworkState, containerId: string): CniInvocation {
  return { list: conflist(state.config), containerId, netns: state.netns, ports: state.ports };
}

/** One run of a container's process on its network. */
export class NetworkSession {
  readonly state: NetworkState;

  private constructor(readonly containerId: string, config: NetworkConfig, ports: PortBinding[]) {
    this.state = { name: config.name, netns: netnsPath(containerId), config, ports };
  }

  /** null for `none` and `host`; a FlokaError for an unknown network. */
  static open(root: StoreRoot, record: ContainerRecord): NetworkSession | null {
    if (!ownNetwork(record.hostConfig.networkMode)) return null;
    const config = new NetworkStore(root).resolve(record.hostConfig.networkMode);
    return new NetworkSession(record.id, config, record.hostConfig.portBindings ?? []);
  }

  /** The namespace, made synchronously (FFI on the main thread); its path goes into the spec. */
  createNamespace(): string {
    checkPortsFree(this.state.ports);
    // A release of this container's previous run still under way is waited for first.
    settleRelease(this.containerId, (s) => teardownStale(this.containerId, s));
    sweepReleases(teardownStale);
    createNetns(this.containerId);
    return this.state.netns;
  }

  /** CNI ADD; fills in the address, gateway and MAC. */
  async add(): Promise<NetworkState> {
    const t = performance.now();
    const result = await cniAdd(invocation(this.state, this.containerId));
    Object.assign(this.state, summarizeResult(result), { result });
    debug(
      `network ${this.state.name}: CNI ADD ${this.state.ipAddress} in ${
        (performance.now() - t).toFixed(1)
      } ms`,
    );
    return this.state;
  }

  /** The release (CNI DEL, the namespace) handed to a background process: see release.ts. */
  releaseInBackground(): void {
    releaseInBackground(this.containerId, this.state);
  }

  /** CNI DEL (with the ADD's result) and the namespace removed; safe to call more than once. */
  async teardown(): Promise<void> {
    try {
      await cniDel(invocation(this.state, this.containerId), this.state.result);
    } finally {
      removeNetns(this.containerId);
    }
  }
}

/**
 * The container's address as host-local leased it (`<dir>/<network>/<ip>` holds the
 * container's ID), as a CNI result: what the firewall plugin's DEL needs to find its rules
 * when the ADD's own result was never recorded.
 */
export function resultFromLease(containerId: string, state: NetworkState): unknown {
  const dir = `${IPAM_DATA_DIR}/${state.config.name}`;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!isIPv4(e.name) || !Deno.readTextFileSync(`${dir}/${e.name}`).startsWith(containerId)) continue;
      const prefix = state.config.subnet.split("/")[1];
      return {
        cniVersion: CNI_VERSION,
        interfaces: [{ name: "eth0", sandbox: state.netns }],
        ips: [{ address: `${e.name}/${prefix}`, gateway: state.config.gateway, interface: 0 }],
      };
    }
  } catch { /* no leases */ }
  return undefined;
}

/** For a container whose supervisor died: DEL (best effort) and the namespace removed. */
export function teardownStale(containerId: string, state: NetworkState): void {
  cniDelSync(invocation(state, containerId), state.result ?? resultFromLease(containerId, state));
  removeNetns(containerId);
}

export { networkName };
