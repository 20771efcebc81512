/** `floka stop`: stop running containers, as `docker stop`. */
import { FlokaError } from "../../lib/errors.ts";
import { parseSignal, stopContainer } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { forEachContainer } from "./output.ts";

/** `-t`/`--time`: whole seconds, as Docker takes them. */
export function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 10;
  if (!/^-?\d+$/.test(text)) throw new FlokaError(`invalid argument "${text}" for "-t, --time" flag`);
  return Math.max(0, Number(text));
}

/** `-t`/`--time` of stop and restart. */
export const TIME_OPTION = {
  short: "t",
  long: "time",
  value: "string",
  help: "Seconds to wait before killing the container (default 10)",
} as const;

export const stopCommand = defineCommand(
  {
    name: "stop",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Stop one or more running containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      time: TIME_OPTION,
      signal: {
        short: "s",
        long: "signal",
        value: "string",
        help: "Signal to send to the container (default: its STOPSIGNAL, else SIGTERM)",
      },
    },
  },
  async ({ options, args, globals }) => {
    const store = openStore(globals);
    const timeout = parseTimeout(options.time);
    const signal = options.signal === undefined ? undefined : parseSignal(options.signal);
    return await forEachContainer(args, (ref) => stopContainer(store, ref, timeout, signal));
  },
);
