/**
 * Entry of `floka network-release ID`, reached from main.ts before the CLI is loaded: the
 * background release of a container's network (see release.ts). Its stdin is the job file,
 * locked by the supervisor that started it.
 */
import { conflist } from "../../lib/network.ts";
import { cniDel } from "./cni.ts";
import { removeNetns } from "./netns.ts";
import { runJob } from "./release.ts";

export async function main(args: string[]): Promise<number> {
  const [id] = args;
  try {
    await runJob(id, async (state) => {
      try {
        await cniDel(
          { list: conflist(state.config), containerId: id, netns: state.netns, ports: state.ports },
          state.result,
        );
      } finally {
        removeNetns(id);
      }
    });
    return 0;
  } catch (err) {
    console.error(`floka network-release ${id}: ${(err as Error).message}`);
    return 125;
  }
}
