/** `floka inspect`: a container's record and state as JSON, in `docker inspect`'s shape. */
import { Command } from "@commander-js/extra-typings";
import { describeError } from "../../lib/errors.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container } from "../containers/store.ts";
import { type Globals, openStore, type SetExit } from "./context.ts";

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
      OOMKilled: false,
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

export function inspectCommand(globals: Globals, setExit: SetExit) {
  return new Command("inspect")
    .description("Return low-level information on containers")
    .usage("[OPTIONS] CONTAINER [CONTAINER...]")
    .helpOption("-h, --help", "Print usage")
    .argument("<containers...>", "container names or IDs")
    .action((refs) => {
      const store = openStore(globals);
      const found = [];
      for (const ref of refs) {
        try {
          found.push(inspectView(reconcile(store, store.find(ref))));
        } catch (err) {
          console.error(`floka: ${describeError(err)}`);
          setExit(1);
        }
      }
      console.log(JSON.stringify(found, null, 4));
    });
}
