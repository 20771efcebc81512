/**
 * Container networking as a Docker user knows it: the default bridge network (`floka`,
 * bridge floka0, NAT), user-defined networks with name resolution through /etc/hosts,
 * published ports (`-p`, `-P`, `floka port`), `--dns`, `--add-host`, and nothing left
 * behind: no veth, network namespace, iptables rule or IPAM lease of a container that ended,
 * even when its Floka was killed.
 */
import assert from "node:assert/strict";
import { integrationTest, lines, show, type Store, waitUntil, withStore } from "./helpers.ts";

const CNI = "/usr/lib/cni/bridge";
const NETNS_DIR = "/run/floka/netns";
const RELEASE_DIR = "/run/floka/release";
const LEASES = "/var/lib/cni/networks";

function haveCni(): boolean {
  try {
    return Deno.statSync(CNI).isFile;
  } catch {
    return false;
  }
}

/** A network test: skipped with a message when the CNI plugins are not installed. */
function networkTest(name: string, fn: () => Promise<void>): void {
  integrationTest(
    name,
    fn,
    haveCni() ? null : `${CNI} is missing (apt-get install containernetworking-plugins)`,
  );
}

function freePort(): number {
  const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function sh(cmd: string, args: string[]): string {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
  return new TextDecoder().decode(out.stdout);
}

/** Whatever of container `idPrefix` (address `ip`) is left on the host. */
function leftovers(idPrefix: string, ip: string): string[] {
  const found: string[] = [];
  const ipRe = new RegExp(`(^|[^\\d.])${ip.replaceAll(".", "\\.")}(/|\\s|$)`, "m");
  const rules = sh("iptables-save", []);
  if (rules.includes(idPrefix)) found.push(`iptables rule naming ${idPrefix}`);
  if (ipRe.test(rules)) found.push(`iptables rule naming ${ip}`);
  for (const dir of [NETNS_DIR, RELEASE_DIR]) {
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (e.name.startsWith(idPrefix)) found.push(`${dir}/${e.name}`);
      }
    } catch { /* no directory: nothing left */ }
  }
  try {
    for (const net of Deno.readDirSync(LEASES)) {
      for (const f of Deno.readDirSync(`${LEASES}/${net.name}`)) {
        const text = Deno.readTextFileSync(`${LEASES}/${net.name}/${f.name}`);
        if (text.startsWith(idPrefix)) found.push(`lease ${net.name}/${f.name}`);
      }
    }
  } catch { /* no leases at all */ }
  return found;
}

/** The host's veths (other tests' releases may still be removing theirs: compare with <=). */
function vethCount(): number {
  return lines(sh("ip", ["-o", "link", "show", "type", "veth"])).length;
}

async function ipOf(s: Store, ref: string): Promise<string> {
  return await waitUntil(`${ref}'s IP address`, async () => {
    try {
      return (await s.inspect(ref)).NetworkSettings?.IPAddress || undefined;
    } catch {
      return undefined; // not made yet
    }
  });
}

networkTest(
  "network: the default is bridge: eth0 with an address, a gateway, hosts and resolv.conf",
  async () => {
    await withStore(async (s) => {
      const r = await s.run([
        "--rm",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db.example:10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; echo ---; ip -o -4 addr show eth0; ip route; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf",
      ]);
      assert.equal(r.code, 0, show(r));
      const [ifaces, addr, hosts, resolv] = r.stdout.split("---\n");
      assert.deepEqual(lines(ifaces).sort(), ["eth0", "lo"]);
      const ip = /inet (\d+\.\d+\.\d+\.\d+)\/16/.exec(addr)?.[1];
      assert.ok(ip, addr);
      assert.match(addr, /default via \d+\.\d+\.0\.1 dev eth0/);
      assert.match(hosts, new RegExp(`^${ip!.replaceAll(".", "\\.")}\\t`, "m"));
      assert.match(hosts, /^10\.1\.2\.3\tdb\.example$/m);
      assert.equal(
        lines(resolv).filter((l) => l.startsWith("nameserver")).join(","),
        "nameserver 192.0.2.53",
      );
    });
  },
);

networkTest("network: two containers on the default bridge ping each other by IP", async () => {
  await withStore(async (s) => {
    const a = await s.run(["-d", "--name", "a", "busybox", "sleep", "60"]);
    assert.equal(a.code, 0, show(a));
    const ip = await ipOf(s, "a");
    const view = await s.inspect("a");
    assert.equal(view.NetworkSettings.Networks.bridge.IPAddress, ip);
    assert.match(view.NetworkSettings.MacAddress, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.match(view.NetworkSettings.Gateway, /^\d+\.\d+\.0\.1$/);
    const b = await s.run(["--rm", "busybox", "ping", "-c", "1", "-W", "2", ip]);
    assert.equal(b.code, 0, show(b));
    assert.match(b.stdout, /1 packets received/);
    assert.equal((await s.floka(["rm", "-f", "a"])).code, 0);
  });
});

networkTest("network: containers of a user-defined network find each other by name", async () => {
  await withStore(async (s) => {
    const net = `fltest${Math.floor(Math.random() * 1e6)}`;
    const created = await s.floka(["network", "create", net]);
    assert.equal(created.code, 0, show(created));
    try {
      const ls = await s.floka(["network", "ls"]);
      assert.match(ls.stdout, new RegExp(`\\b${net}\\b`));
      assert.match(ls.stdout, /\bbridge\b/);
      const json = lines((await s.floka(["network", "ls", "--format", "json"])).stdout).map((l) =>
        JSON.parse(l)
      );
      assert.ok(json.some((n) => n.Name === net && n.Driver === "bridge" && /^[0-9a-f]{12}$/.test(n.ID)));
      const names = await s.floka(["network", "ls", "--format", "{{.Name}}"]);
      assert.ok(lines(names.stdout).includes(net), show(names));
      assert.equal(
        (await s.run(["-d", "--name", "srv", "--network", net, "busybox", "sleep", "60"])).code,
        0,
      );
      const ip = await ipOf(s, "srv");
      const r = await s.run([
        "--rm",
        "--name",
        "cli",
        "--network",
        net,
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "srv",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`PING srv \\(${ip.replaceAll(".", "\\.")}\\)`));
      // The running container's own hosts file learnt of a newcomer while it ran.
      const later = s.spawn(["run", "--name", "late", "--network", net, "busybox", "sleep", "60"]);
      await ipOf(s, "late");
      const seen = await s.floka(["exec", "srv", "ping", "-c", "1", "-W", "2", "late"]);
      assert.equal(seen.code, 0, show(seen));
      await s.floka(["rm", "-f", "late"]);
      await later.finish();
      const inspect = JSON.parse((await s.floka(["network", "inspect", net])).stdout);
      assert.equal(Object.keys(inspect[0].Containers).length, 1);
      const refused = await s.floka(["network", "rm", net]);
      assert.notEqual(refused.code, 0, show(refused));
      assert.match(refused.stderr, /active endpoints/);
      await s.floka(["rm", "-f", "srv"]);
    } finally {
      await s.floka(["rm", "-f", "srv", "late"]);
      const rm = await s.floka(["network", "rm", net]);
      assert.equal(rm.code, 0, show(rm));
    }
  });
});

networkTest("network: a published port answers on 127.0.0.1 and the host's address; floka port", async () => {
  await withStore(async (s) => {
    const www = `${s.root}/www`;
    Deno.mkdirSync(www);
    Deno.writeTextFileSync(`${www}/index.html`, "hello from floka\n");
    const port = freePort();
    const r = await s.run([
      "-d",
      "--name",
      "web",
      "-p",
      `${port}:80`,
      "-v",
      `${www}:/www:ro`,
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    assert.equal(r.code, 0, show(r));
    await ipOf(s, "web");
    const body = await waitUntil("the web server to answer", async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`);
        return await res.text();
      } catch {
        return undefined;
      }
    }, 10_000);
    assert.equal(body, "hello from floka\n");
    const p = await s.floka(["port", "web"]);
    assert.equal(p.stdout, `80/tcp -> 0.0.0.0:${port}\n`);
    assert.equal((await s.floka(["port", "web", "80/tcp"])).stdout, `0.0.0.0:${port}\n`);
    const view = await s.inspect("web");
    assert.deepEqual(view.NetworkSettings.Ports["80/tcp"], [{ HostIp: "0.0.0.0", HostPort: String(port) }]);
    // The same port again: refused before anything is made.
    const again = await s.run(["--rm", "-p", `${port}:80`, "busybox", "true"]);
    assert.equal(again.code, 125, show(again));
    assert.match(again.stderr, /already allocated/);
    await s.floka(["rm", "-f", "web"]);
  });
});

networkTest("network: -P publishes the image's exposed ports to free host ports", async () => {
  await withStore(async (s) => {
    const r = await s.run([
      "-d",
      "--name",
      "exp",
      "-P",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "7000",
      "-h",
      "/etc",
    ]);
    assert.equal(r.code, 0, show(r));
    const p = await s.floka(["port", "exp"]);
    assert.match(p.stdout, /^7000\/tcp -> 0\.0\.0\.0:\d+\n$/);
    const port = Number(p.stdout.trim().split(":").pop());
    const reply = await waitUntil("httpd to answer", async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${port}/hostname`)).text();
      } catch {
        return undefined;
      }
    }, 10_000);
    assert.equal(reply.trim(), (await s.inspect("exp")).Config.Hostname);
    await s.floka(["rm", "-f", "exp"]);
  }, { config: { Cmd: ["sh"], ExposedPorts: { "7000/tcp": {} } } });
});

networkTest("network: a port in use exits 125 and leaves nothing; an unknown network exits 125", async () => {
  await withStore(async (s) => {
    const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    try {
      const r = await s.run(["--rm", "-p", `${port}:80`, "busybox", "true"]);
      assert.equal(r.code, 125, show(r));
      assert.match(r.stderr, new RegExp(`${port}.*already allocated`));
      assert.equal(lines(r.stderr).length, 1, show(r));
    } finally {
      listener.close();
    }
    // Refused before its network namespace was made: nothing of it exists to leak.
    assert.deepEqual(s.containerDirs(), []);
    const u = await s.run(["--rm", "--network", "no-such-net", "busybox", "true"]);
    assert.equal(u.code, 125, show(u));
    assert.match(u.stderr, /network no-such-net not found/);
    assert.deepEqual(s.containerDirs(), []);
  });
});

/** The figure: 50 runs with a published port. */
const LEAK_RUNS = 50;

networkTest(`network: ${LEAK_RUNS} runs with -p leave no veth, netns, iptables rule or lease`, async () => {
  await withStore(async (s) => {
    const veths = vethCount();
    const port = freePort();
    const seen: [string, string][] = [];
    for (let i = 0; i < LEAK_RUNS; i++) {
      const r = await s.run([
        "--rm",
        "-p",
        `${port}:80`,
        "busybox",
        "sh",
        "-c",
        "hostname; ip -o -4 addr show eth0",
      ]);
      assert.equal(r.code, 0, show(r));
      const [id, addr] = lines(r.stdout);
      seen.push([id, /inet (\S+)\//.exec(addr)![1]]);
    }
    // Each run's network is released by a background process once the run has ended.
    await waitUntil(
      () => `the releases to finish: ${seen.flatMap(([id, ip]) => leftovers(id, ip)).join(", ")}`,
      () => seen.every(([id, ip]) => leftovers(id, ip).length === 0),
      60_000,
    );
    await waitUntil(
      `the veths to go (${vethCount()} left, ${veths} before)`,
      () => vethCount() <= veths,
      20_000,
    );
    assert.deepEqual(s.containerDirs(), []);
  });
});

networkTest(
  "network: a killed floka run: the next command reconciles it and releases its network",
  async () => {
    await withStore(async (s) => {
      const bg = s.spawn(["run", "--name", "victim", "-p", `${freePort()}:80`, "busybox", "sleep", "60"]);
      const ip = await ipOf(s, "victim");
      const id = (await s.inspect("victim")).Id as string;
      assert.ok(Deno.statSync(`${NETNS_DIR}/${id}`));
      bg.child.kill("SIGKILL");
      await bg.child.status;
      const ps = await s.floka(["ps", "-a"]);
      assert.equal(ps.code, 0, show(ps));
      assert.match(ps.stdout, /Exited \(255\)/);
      assert.deepEqual(leftovers(id.slice(0, 12), ip), []);
      assert.equal((await s.floka(["rm", "victim"])).code, 0);
    });
  },
);

networkTest(
  "network: restarts attach and release the network each time, nothing left at the end",
  async () => {
    await withStore(async (s) => {
      const r = await s.run([
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "hostname; exit 3",
      ]);
      assert.equal(r.code, 0, show(r));
      const id = r.stdout.trim();
      await waitUntil("the restarts to end", async () => {
        const v = await s.inspect("flaky");
        return v.State.Status === "exited" && v.RestartCount === 2;
      });
      const logs = await s.floka(["logs", "flaky"]);
      assert.equal(lines(logs.stdout).length, 3, show(logs));
      await waitUntil(
        () => `no leftovers of ${id}: ${leftovers(id.slice(0, 12), "10.255.255.255")}`,
        () => leftovers(id.slice(0, 12), "10.255.255.255").length === 0,
        20_000,
      );
    });
  },
);

networkTest("network: prune removes the networks no container names, stopped ones included", async () => {
  await withStore(async (s) => {
    for (const name of ["unused", "kept"]) assert.equal((await s.floka(["network", "create", name])).code, 0);
    const ran = await s.floka(["run", "--name", "user", "--network", "kept", "busybox", "true"]);
    assert.equal(ran.code, 0, show(ran));
    const prune = await s.floka(["network", "prune", "-f"]);
    assert.equal(prune.code, 0, show(prune));
    assert.equal(prune.stdout, "Deleted Networks:\nunused\n\n");
    const names = lines((await s.floka(["network", "ls", "-q"])).stdout);
    assert.deepEqual(names, ["bridge", "kept", "host", "none"]);
    assert.equal((await s.floka(["rm", "user"])).code, 0);
    assert.equal((await s.floka(["network", "prune", "-f"])).stdout, "Deleted Networks:\nkept\n\n");
    assert.deepEqual(lines((await s.floka(["network", "ls", "-q"])).stdout), ["bridge", "host", "none"]);
  });
});
