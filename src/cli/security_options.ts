/**
 * `--security-opt`, `--cap-add`, `--cap-drop` and `--privileged` of `floka run`, read as
 * Docker reads them into the container's record. A seccomp profile file is read and
 * checked now: the record keeps its JSON, so the container starts the same way after the
 * file changes or goes.
 */
import { containerCapabilities, normalizeCapability } from "../../lib/capabilities.ts";
import { FlokaError } from "../../lib/errors.ts";
import { parseProfile } from "../../lib/seccomp/profile.ts";
import type { ContainerRecord } from "../containers/store.ts";

type SecurityConfig = Pick<
  ContainerRecord["hostConfig"],
  "capAdd" | "capDrop" | "privileged" | "noNewPrivileges" | "seccompProfile"
>;

export interface SecurityFlags {
  capAdd: readonly string[];
  capDrop: readonly string[];
  privileged?: boolean;
  securityOpt: readonly string[];
}

export function securityConfig(flags: SecurityFlags): SecurityConfig {
  const capAdd = flags.capAdd.map(normalizeCapability);
  const capDrop = flags.capDrop.map(normalizeCapability);
  containerCapabilities(capAdd, capDrop); // refuses a bad combination now, not at every start
  const config: SecurityConfig = {
    ...(capAdd.length ? { capAdd } : {}),
    ...(capDrop.length ? { capDrop } : {}),
    ...(flags.privileged ? { privileged: true } : {}),
  };
  for (const opt of flags.securityOpt) Object.assign(config, securityOpt(opt));
  return config;
}

/** One `--security-opt`: `KEY=VALUE`, or Docker's older `KEY:VALUE`. */
function securityOpt(opt: string): SecurityConfig {
  const match = /^([a-z-]+)(?:[=:](.*))?$/s.exec(opt);
  const [key, value] = match ? [match[1], match[2]] : ["", undefined];
  if (key === "no-new-privileges") {
    if (value === undefined || value === "true") return { noNewPrivileges: true };
    if (value === "false") return { noNewPrivileges: false };
    throw new FlokaError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
  }
  if (key === "seccomp" && value) {
    if (value === "unconfined") return { seccompProfile: "unconfined" };
    return { seccompProfile: readProfile(value) };
  }
  // Floka confines with neither AppArmor nor SELinux: turning them off asks for nothing.
  if ((key === "apparmor" && value === "unconfined") || (key === "label" && value === "disable")) return {};
  if (key === "apparmor" || key === "label") {
    throw new FlokaError(`--security-opt ${opt}: Floka supports neither AppArmor nor SELinux labels`);
  }
  throw new FlokaError(`invalid --security-opt: ${JSON.stringify(opt)}`);
}

function readProfile(path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new FlokaError(`opening seccomp profile (${path}) failed: ${(err as Error).message}`);
  }
  parseProfile(text, path); // a bad profile fails here, naming the file
  return text;
}
