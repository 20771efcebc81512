/** The pure part of networking: `-p` parsing, subnet choice, the CNI configuration, results. */
import assert from "node:assert/strict";
import {
  chooseSubnet,
  conflist,
  exposedPorts,
  formatPort,
  type NetworkConfig,
  overlaps,
  parseAddHost,
  parsePublish,
  pluginConfig,
  routesFromProcNetRoute,
  subnetGateway,
  summarizeResult,
} from "../../lib/network.ts";
import { containerHosts, withNameservers } from "../../src/runtime/etc_files.ts";
import { bridgeName } from "../../src/network/networks.ts";

Deno.test("parsePublish: Docker's forms", () => {
  assert.deepEqual(parsePublish("8080:80"), [{
    hostIp: "",
    hostPort: 8080,
    containerPort: 80,
    protocol: "tcp",
  }]);
  assert.deepEqual(parsePublish("127.0.0.1:8080:80/udp"), [
    { hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "udp" },
  ]);
  assert.deepEqual(parsePublish("80"), [{ hostIp: "", hostPort: 0, containerPort: 80, protocol: "tcp" }]);
  assert.deepEqual(parsePublish("127.0.0.1::80"), [
    { hostIp: "127.0.0.1", hostPort: 0, containerPort: 80, protocol: "tcp" },
  ]);
  assert.deepEqual(parsePublish("0.0.0.0:9000:90")[0].hostIp, "");
  assert.deepEqual(parsePublish("8080-8081:80-81").map((p) => [p.hostPort, p.containerPort]), [[8080, 80], [
    8081,
    81,
  ]]);
});

Deno.test("parsePublish: refuses nonsense", () => {
  for (
    const bad of [
      "",
      "abc",
      "8080:80/sctp",
      "70000:80",
      "1:2:3:4",
      "8080-8082:80-81",
      "80-81",
      "x.y:1:2",
      "0:80",
    ]
  ) {
    assert.throws(() => parsePublish(bad), /port spec|invalid/, bad);
  }
});

Deno.test("exposedPorts and formatPort", () => {
  assert.deepEqual(
    exposedPorts({ "80/tcp": {}, "53/udp": {}, "8443": {}, "bad/x": {} }).map(formatPort).sort(),
    [
      "53/udp -> 0.0.0.0:0",
      "80/tcp -> 0.0.0.0:0",
      "8443/tcp -> 0.0.0.0:0",
    ],
  );
  assert.equal(
    formatPort({ hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "tcp" }),
    "80/tcp -> 127.0.0.1:8080",
  );
});

Deno.test("parseAddHost", () => {
  assert.deepEqual(parseAddHost("db:10.0.0.5"), { name: "db", ip: "10.0.0.5" });
  assert.deepEqual(parseAddHost("db=10.0.0.5"), { name: "db", ip: "10.0.0.5" });
  assert.throws(() => parseAddHost("db"));
  assert.throws(() => parseAddHost("db:notanip"));
});

Deno.test("subnets: overlap, gateway, /proc/net/route", () => {
  assert.ok(overlaps("10.89.0.0/16", "10.89.3.0/24"));
  assert.ok(!overlaps("10.89.0.0/16", "10.90.0.0/16"));
  assert.deepEqual(subnetGateway("10.89.7.9/16"), { subnet: "10.89.0.0/16", gateway: "10.89.0.1" });
  const route = [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    "br0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
  ].join("\n");
  assert.deepEqual(routesFromProcNetRoute(route), ["192.0.2.0/24", "10.89.0.0/16"]);
});

Deno.test("chooseSubnet: skips Podman's 10.88/16, host routes and other networks", () => {
  assert.equal(chooseSubnet([], []), "10.89.0.0/16");
  assert.equal(chooseSubnet(["10.89.0.0/16"], []), "10.90.0.0/16");
  assert.equal(chooseSubnet(["10.89.5.0/24"], ["10.90.0.0/16"]), "10.91.0.0/16");
  assert.throws(() => chooseSubnet(["10.0.0.0/8"], []), /no free private subnet/);
});

const NET: NetworkConfig = {
  name: "floka",
  id: "x",
  driver: "bridge",
  bridge: "floka0",
  subnet: "10.89.0.0/16",
  gateway: "10.89.0.1",
  created: "",
};

Deno.test("conflist: bridge + host-local, portmap, firewall", () => {
  const list = conflist(NET);
  assert.equal(list.cniVersion, "1.0.0");
  assert.deepEqual(list.plugins.map((p) => p.type), ["bridge", "portmap", "firewall"]);
  const bridge = list.plugins[0] as Record<string, unknown>;
  assert.equal(bridge.bridge, "floka0");
  assert.equal(bridge.isGateway, true);
  assert.equal(bridge.ipMasq, true);
  assert.equal(bridge.hairpinMode, true);
  assert.deepEqual((bridge.ipam as { ranges: unknown }).ranges, [[{
    subnet: "10.89.0.0/16",
    gateway: "10.89.0.1",
  }]]);
  assert.deepEqual(list.plugins[1], { type: "portmap", capabilities: { portMappings: true }, snat: true });
});

Deno.test("pluginConfig: name, version, runtimeConfig for portmap only, prevResult", () => {
  const list = conflist(NET);
  const ports = [{ hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" as const }];
  const bridge = pluginConfig(list, 0, ports, undefined);
  assert.equal(bridge.name, "floka");
  assert.equal(bridge.cniVersion, "1.0.0");
  assert.equal("runtimeConfig" in bridge, false);
  assert.equal("prevResult" in bridge, false);
  const portmap = pluginConfig(list, 1, ports, { ips: [] });
  assert.deepEqual(portmap.runtimeConfig, {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" }],
  });
  assert.deepEqual(portmap.prevResult, { ips: [] });
});

Deno.test("summarizeResult: the container's address, gateway and MAC", () => {
  const result = {
    cniVersion: "1.0.0",
    interfaces: [
      { name: "floka0", mac: "aa:aa:aa:aa:aa:aa" },
      { name: "veth1", mac: "bb:bb:bb:bb:bb:bb" },
      { name: "eth0", mac: "cc:cc:cc:cc:cc:cc", sandbox: "/run/floka/netns/x" },
    ],
    ips: [{ interface: 2, address: "10.89.0.5/16", gateway: "10.89.0.1" }],
  };
  assert.deepEqual(summarizeResult(result), {
    ipAddress: "10.89.0.5",
    prefixLen: 16,
    gateway: "10.89.0.1",
    macAddress: "cc:cc:cc:cc:cc:cc",
  });
  assert.throws(() => summarizeResult({ ips: [] }), /no IP address/);
});

Deno.test("hosts and resolv.conf for a networked container", () => {
  const hosts = containerHosts("abc", { ip: "10.89.0.5", names: ["abc", "web"] }, [
    { ip: "10.0.0.9", names: ["db"] },
  ]);
  assert.match(hosts, /^10\.89\.0\.5\tabc web$/m);
  assert.match(hosts, /^10\.0\.0\.9\tdb$/m);
  assert.doesNotMatch(hosts, /127\.0\.1\.1/);
  assert.equal(
    withNameservers("nameserver 127.0.0.53\nsearch example.com\n", ["1.1.1.1"]),
    "nameserver 1.1.1.1\nsearch example.com\n",
  );
  assert.equal(withNameservers("nameserver 8.8.8.8\n", []), "nameserver 8.8.8.8\n");
});

Deno.test("bridgeName: floka0 for the default network, at most 15 characters", () => {
  assert.equal(bridgeName("floka"), "floka0");
  assert.ok(bridgeName("a-very-long-network-name-indeed").length <= 15);
  assert.notEqual(bridgeName("a"), bridgeName("b"));
});
