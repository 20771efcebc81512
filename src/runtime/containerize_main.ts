/**
 * Entry of `floka containerize SYNC_FD`, reached from main.ts before the CLI is loaded:
 * read the spec from the host, set the container up, exec. Kept apart from the step list
 * so the steps can be imported by tests without running anything.
 */
import type { ContainerSpec } from "../../lib/spec.ts";
import { containerize } from "./containerize.ts";
import { linuxSys } from "./sys.ts";
import { receiveSpec, reporter } from "./sync_channel.ts";

export function main(args: string[]): never {
  const channel = Number(args[0]);
  const spec = receiveSpec<ContainerSpec>(channel, "containerize");
  containerize(spec, linuxSys, channel, reporter(channel));
}
