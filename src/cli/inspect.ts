/** `floka inspect`: a container's record and state as JSON, in `docker inspect`'s shape. */
import { describeError, FlokaError } from "../../lib/errors.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container } from "../containers/store.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

const ZERO_TIME = "0001-01-01T00:00:00Z";

export function inspectView(c: Container) {
  const { record, state } = c;
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: {
      Status: state.status,
      Running: state.status === "running",
      Paused: false,
      Restarting: false,
      OOMKilled: state.oomKilled ?? false,
      Dead: false,
      Pid: state.pid,
      ExitCode: state.exitCode ?? 0,
      Error: state.error ?? "",
      StartedAt: state.startedAt ?? ZERO_TIME,
      FinishedAt: state.finishedAt ?? ZERO_TIME,
    },
    Image: record.image,
    Name: `/${record.name}`,
    HostnamePath: `${c.dir}/hostname`,
    HostsPath: `${c.dir}/hosts`,
    ResolvConfPath: `${c.dir}/resolv.conf`,
    HostConfig: {
      AutoRemove: record.hostConfig.autoRemove,
      NetworkMode: record.hostConfig.networkMode,
      Memory: record.hostConfig.memory,
      CpuShares: record.hostConfig.cpuShares,
    },
    GraphDriver: {
      Name: "overlay2",
      Data: {
        LowerDir: record.lowerDirs.join(":"),
        UpperDir: `${c.dir}/upper`,
        WorkDir: `${c.dir}/work`,
        MergedDir: `${c.dir}/rootfs`,
      },
    },
    Config: {
      Hostname: record.config.hostname,
      User: record.config.user,
      Env: record.config.env,
      Cmd: record.config.cmd,
      Entrypoint: record.config.entrypoint,
      Image: record.image,
      WorkingDir: record.config.workingDir,
    },
  };
}

export const inspectCommand = defineCommand(
  {
    name: "inspect",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Display detailed information on one or more containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {},
  },
  ({ args, globals }) => {
    const store = openStore(globals);
    const found = [];
    let exitCode = 0;
    for (const ref of args) {
      try {
        const c = reconcile(store, store.find(ref));
        if (!c) throw new FlokaError(`No such container: ${ref}`);
        found.push(inspectView(c));
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    console.log(JSON.stringify(found, null, 4));
    return exitCode;
  },
);
