/**
 * `floka login` / `floka logout` against a docker-registry that demands credentials, Basic
 * (htpasswd) and Bearer (a token server), and the pulls that follow.
 */
import assert from "node:assert/strict";
import { IS_ROOT, show, withStore } from "./helpers.ts";
import { pushImage, registryToolsMissing, startRegistry } from "./registry_harness.ts";

const missing = registryToolsMissing();
const skip = !IS_ROOT
  ? "login tests skipped: they need root"
  : missing
  ? `login tests skipped: ${missing}`
  : null;
if (skip) console.error(skip);

const USER = { user: "alice", password: "s3cret-pass" };

for (const mode of ["basic", "bearer"] as const) {
  Deno.test({
    name: `login: ${mode} auth: wrong password refused, right one saved (0600), pull works, logout forgets`,
    ignore: skip !== null,
    fn: async () => {
      const registry = await startRegistry({ htpasswd: USER, tokenAuth: mode === "bearer" });
      const home = await Deno.makeTempDir({ prefix: "floka-login-" });
      const env = { FLOKA_AUTH_FILE: `${home}/auth.json` };
      try {
        await withStore(async (store) => {
          await pushImage(registry.host, "private", { credentials: USER });
          const image = `${registry.host}/private`;
          const anonymous = await store.floka(["pull", "-q", image], { env });
          assert.equal(anonymous.code, 125, show(anonymous));
          assert.match(anonymous.stderr, /floka login/);

          const login = (password: string) =>
            store.floka(["login", "-u", USER.user, "--password-stdin", registry.host], {
              env,
              stdin: password,
            });
          const wrong = await login("nope");
          assert.notEqual(wrong.code, 0, show(wrong));
          assert.match(wrong.stderr, /login to .* failed: unauthorized/);
          assert.throws(() => Deno.statSync(env.FLOKA_AUTH_FILE), "a failed login saved something");

          const right = await login(`${USER.password}\n`);
          assert.equal(right.code, 0, show(right));
          assert.match(right.stdout, /Login Succeeded/);
          assert.equal(Deno.statSync(env.FLOKA_AUTH_FILE).mode! & 0o777, 0o600);
          const saved = JSON.parse(Deno.readTextFileSync(env.FLOKA_AUTH_FILE));
          assert.equal(atob(saved.auths[registry.host].auth), `${USER.user}:${USER.password}`);

          const pull = await store.floka(["pull", "-q", image], { env });
          assert.equal(pull.code, 0, show(pull));

          const logout = await store.floka(["logout", registry.host], { env });
          assert.equal(logout.code, 0, show(logout));
          assert.equal(Object.keys(JSON.parse(Deno.readTextFileSync(env.FLOKA_AUTH_FILE)).auths).length, 0);
          const again = await store.floka(["logout", registry.host], { env });
          assert.notEqual(again.code, 0, show(again));
        });
      } finally {
        await registry.stop();
        await Deno.remove(home, { recursive: true });
      }
    },
  });
}
