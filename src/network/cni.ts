/**
 * Runs the standard CNI plugins (Debian's containernetworking-plugins) for a configuration
 * list, as a CNI runtime does: each plugin of the list is executed in order for ADD (in
 * reverse for DEL) with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH in
 * its environment and its configuration on stdin, the previous plugin's result included as
 * `prevResult`. A plugin that fails prints a CNI error object on stdout.
 */
import { FlokaError } from "../../lib/errors.ts";
import { debug } from "../log.ts";
import { type conflist, pluginConfig, type PortBinding } from "../../lib/network.ts";

export const CNI_PATH = Deno.env.get("FLOKA_CNI_PATH") ?? "/usr/lib/cni";

/** True when the plugins Floka needs are installed. */
export function cniAvailable(): boolean {
  try {
    return Deno.statSync(`${CNI_PATH}/bridge`).isFile;
  } catch {
    return false;
  }
}

export interface CniInvocation {
  list: ReturnType<typeof conflist>;
  containerId: string;
  netns: string;
  ports: readonly PortBinding[];
}

function pluginEnv(command: "ADD" | "DEL", inv: CniInvocation): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: CNI_PATH,
    PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  };
}

/** portmap with nothing to publish does nothing: it is not even executed then. */
function skipped(inv: CniInvocation, index: number): boolean {
  return inv.list.plugins[index].type === "portmap" && inv.ports.length === 0;
}

async function execPlugin(
  command: "ADD" | "DEL",
  inv: CniInvocation,
  index: number,
  prevResult: unknown,
): Promise<unknown> {
  const type = inv.list.plugins[index].type;
  const started = performance.now();
  const child = new Deno.Command(`${CNI_PATH}/${type}`, {
    env: pluginEnv(command, inv),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(JSON.stringify(pluginConfig(inv.list, index, inv.ports, prevResult))),
  );
  await writer.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  debug(`CNI ${type} ${command}: ${(performance.now() - started).toFixed(1)} ms`);
  if (!out.success) {
    let msg = new TextDecoder().decode(out.stderr).trim();
    try {
      const e = JSON.parse(stdout) as { msg?: string; details?: string };
      msg = [e.msg, e.details].filter(Boolean).join(": ") || msg;
    } catch { /* not a CNI error object */ }
    throw new FlokaError(`CNI plugin ${type} ${command} failed: ${msg || `exit code ${out.code}`}`);
  }
  return stdout ? JSON.parse(stdout) : prevResult;
}

/** CNI ADD through the whole list; returns the last plugin's result. */
export async function cniAdd(inv: CniInvocation): Promise<unknown> {
  let result: unknown = undefined;
  for (let i = 0; i < inv.list.plugins.length; i++) {
    if (skipped(inv, i)) continue;
    result = await execPlugin("ADD", inv, i, result);
  }
  return result;
}

/**
 * CNI DEL for the whole list, each plugin given the ADD's result. The plugins of Floka's
 * list undo independent things (bridge: the veth, the lease and the masquerade chain;
 * portmap and firewall: their own chains), so their DELs run side by side instead of in
 * reverse order one after the other: the process's end waits for the slowest alone. DEL is
 * idempotent for these plugins; every plugin runs even when one fails, and the first
 * failure is thrown at the end.
 */
export async function cniDel(inv: CniInvocation, prevResult: unknown): Promise<void> {
  const runs = inv.list.plugins.map((_, i) => i).filter((i) => !skipped(inv, i))
    .map((i) => execPlugin("DEL", inv, i, prevResult));
  const failed = (await Promise.allSettled(runs)).find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * DEL from a synchronous caller (reconciling a container whose Floka was killed): each
 * plugin runs through `sh`, its configuration passed in the environment and piped in.
 * Failures are ignored: it is a best-effort cleanup, and DEL is idempotent.
 */
export function cniDelSync(inv: CniInvocation, prevResult: unknown): void {
  for (let i = inv.list.plugins.length - 1; i >= 0; i--) {
    if (skipped(inv, i)) continue;
    const type = inv.list.plugins[i].type;
    new Deno.Command("/bin/sh", {
      args: ["-c", 'printf %s "$FLOKA_CNI_CONFIG" | "$0"', `${CNI_PATH}/${type}`],
      env: {
        ...pluginEnv("DEL", inv),
        FLOKA_CNI_CONFIG: JSON.stringify(pluginConfig(inv.list, i, inv.ports, prevResult)),
      },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync();
  }
}
