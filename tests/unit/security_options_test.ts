import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { securityConfig } from "../../src/cli/security_options.ts";

const flags = (
  securityOpt: string[],
  more: { capAdd?: string[]; capDrop?: string[]; privileged?: boolean } = {},
) => securityConfig({ capAdd: [], capDrop: [], securityOpt, ...more });

const isFlokaError = (pattern: RegExp) => (e: Error) => e instanceof FlokaError && pattern.test(e.message);

Deno.test("--security-opt no-new-privileges in Docker's spellings", () => {
  for (const opt of ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"]) {
    assert.equal(flags([opt]).noNewPrivileges, true, opt);
  }
  assert.equal(flags(["no-new-privileges=false"]).noNewPrivileges, false);
  assert.throws(() => flags(["no-new-privileges=maybe"]), isFlokaError(/no-new-privileges=maybe/));
});

Deno.test("--security-opt seccomp=unconfined, and a profile file kept as its JSON", () => {
  assert.equal(flags(["seccomp=unconfined"]).seccompProfile, "unconfined");
  const file = Deno.makeTempFileSync({ suffix: ".json" });
  try {
    const profile = JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
    });
    Deno.writeTextFileSync(file, profile);
    assert.equal(flags([`seccomp=${file}`]).seccompProfile, profile);
    Deno.writeTextFileSync(file, "{ not json");
    assert.throws(() => flags([`seccomp=${file}`]), isFlokaError(new RegExp(file)));
  } finally {
    Deno.removeSync(file);
  }
  assert.throws(
    () => flags(["seccomp=/nonexistent/profile.json"]),
    isFlokaError(/\/nonexistent\/profile\.json/),
  );
});

Deno.test("unknown --security-opt values fail; turning off AppArmor or labels is accepted", () => {
  assert.throws(() => flags(["bogus"]), isFlokaError(/invalid --security-opt: "bogus"/));
  assert.throws(() => flags(["apparmor=docker-default"]), isFlokaError(/AppArmor/));
  assert.deepEqual(flags(["apparmor=unconfined", "label=disable"]), {});
});

Deno.test("--cap-add/--cap-drop are normalised and checked; --privileged is recorded", () => {
  assert.deepEqual(flags([], { capAdd: ["net_admin"], capDrop: ["CAP_CHOWN"] }), {
    capAdd: ["CAP_NET_ADMIN"],
    capDrop: ["CAP_CHOWN"],
  });
  assert.throws(() => flags([], { capAdd: ["FOO"] }), isFlokaError(/unknown capability: "FOO"/));
  assert.equal(flags([], { privileged: true }).privileged, true);
});
