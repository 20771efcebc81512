/**
 * Resolves `--user` against a container's /etc/passwd and /etc/group, as Docker does:
 * `name`, `uid`, `name:group`, `uid:gid`; numeric ids need not exist in the files.
 */
import { FlokaError } from "./errors.ts";

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups: those /etc/group lists the user in. */
  groups: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function lines(text: string): string[][] {
  return text.split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((
    l,
  ) => l.split(":"));
}

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text).filter((f) => f.length >= 4).map((f) => ({
    name: f[0],
    uid: Number(f[2]),
    gid: Number(f[3]),
    home: f[5] || "/",
  }));
}

export function parseGroup(text: string): GroupEntry[] {
  return lines(text).filter((f) => f.length >= 3).map((f) => ({
    name: f[0],
    gid: Number(f[2]),
    members: (f[3] ?? "").split(",").filter(Boolean),
  }));
}

const isId = (s: string) => /^\d+$/.test(s);

/** Resolves `spec` ("" means root). `passwd`/`group` are the files' text, "" when absent. */
export function resolveUser(
  spec: string,
  passwd: string,
  group: string,
): ExecUser {
  const [userPart, groupPart] = spec === "" ? ["0", undefined] : spec.split(":", 2);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);

  const entry = isId(userPart)
    ? users.find((u) => u.uid === Number(userPart))
    : users.find((u) => u.name === userPart);
  if (!entry && !isId(userPart)) {
    throw new FlokaError(
      `unable to find user ${userPart}: no matching entries in passwd file`,
    );
  }
  const uid = entry?.uid ?? Number(userPart);
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== "") {
    if (isId(groupPart)) {
      gid = Number(groupPart);
    } else {
      const g = groups.find((g) => g.name === groupPart);
      if (!g) {
        throw new FlokaError(
          `unable to find group ${groupPart}: no matching entries in group file`,
        );
      }
      gid = g.gid;
    }
  }
  const supplementary = entry ? groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid) : [];
  // With an explicit group Docker keeps only it; otherwise the primary group plus memberships.
  const all = groupPart ? [gid] : [gid, ...supplementary];
  return { uid, gid, groups: [...new Set(all)], home: entry?.home ?? "/" };
}
