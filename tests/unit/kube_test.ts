/** `floka generate kube`'s conversion of container records to a Pod manifest, and its YAML quoting. */
import assert from "node:assert/strict";
import {
  commandAndArgs,
  cpuQuantity,
  generateKube,
  type KubeContainer,
  type KubeImage,
  kubeName,
  memoryQuantity,
  podEnv,
  yamlString,
} from "../../src/containers/kube.ts";
import type { ContainerRecord } from "../../src/containers/store.ts";
import { havePyYaml, parseYaml } from "../fixtures/pyyaml.ts";

const ID = "0123456789ab".padEnd(64, "c");

function record(overrides: {
  name?: string;
  config?: Partial<ContainerRecord["config"]>;
  hostConfig?: Partial<ContainerRecord["hostConfig"]>;
} = {}): ContainerRecord {
  return {
    id: ID,
    name: overrides.name ?? "web",
    created: "2026-01-01T00:00:00Z",
    image: "busybox:latest",
    lowerDirs: [],
    path: "httpd",
    args: ["-f"],
    config: {
      hostname: ID.slice(0, 12),
      env: ["PATH=/usr/local/sbin:/usr/bin", `HOSTNAME=${ID.slice(0, 12)}`, "FOO=bar"],
      workingDir: "/srv",
      user: "",
      entrypoint: null,
      cmd: ["httpd", "-f", "-p", "80"],
      ...overrides.config,
    },
    hostConfig: {
      autoRemove: false,
      networkMode: "bridge",
      memory: 0,
      cpuShares: 0,
      ...overrides.hostConfig,
    },
  };
}

const PULLED: KubeImage = {
  pulled: true,
  reference: "docker.io/library/busybox:latest",
  config: { Cmd: ["sh"], Env: ["PATH=/usr/local/sbin:/usr/bin"] },
};

function kube(containers: KubeContainer[], service = false): string {
  return generateKube(containers, { service });
}

Deno.test("yamlString leaves plain what YAML reads back as the same string", () => {
  for (const s of ["busybox", "docker.io/library/busybox:latest", "/srv/data", "FOO", "a-b_c.d", "x=y"]) {
    assert.equal(yamlString(s), s);
  }
});

Deno.test("yamlString quotes what YAML would read otherwise", () => {
  const cases: [string, string][] = [
    ["a: b", '"a: b"'],
    ["a #b", '"a #b"'],
    ["#x", '"#x"'],
    ["  lead", '"  lead"'],
    ["trail ", '"trail "'],
    ['say "hi"', '"say \\"hi\\""'],
    ["it's", `"it's"`],
    ["line1\nline2", '"line1\\nline2"'],
    ["true", '"true"'],
    ["False", '"False"'],
    ["yes", '"yes"'],
    ["off", '"off"'],
    ["null", '"null"'],
    ["~", '"~"'],
    ["", '""'],
    ["80", '"80"'],
    ["0x1F", '"0x1F"'],
    ["1.5", '"1.5"'],
    ["-1", '"-1"'],
    ["1:30", '"1:30"'],
    [".inf", '".inf"'],
    ["2001-12-14", '"2001-12-14"'],
    ["key:", '"key:"'],
    ["- item", '"- item"'],
    ["[a]", '"[a]"'],
    ["{a}", '"{a}"'],
    ["*ref", '"*ref"'],
    ["&anchor", '"&anchor"'],
    ["!tag", '"!tag"'],
    ["|", '"|"'],
    [">", '">"'],
    ["@x", '"@x"'],
    ["`x`", '"`x`"'],
    ["%x", '"%x"'],
    ["tab\there", '"tab\\there"'],
    ["del\u007f", '"del\\u007f"'],
    ["héllo", '"héllo"'],
  ];
  for (const [input, expected] of cases) assert.equal(yamlString(input), expected, JSON.stringify(input));
});

Deno.test("quantities: memory in binary units, CPUs in millicores", () => {
  assert.equal(memoryQuantity(64 * 1024 * 1024), "64Mi");
  assert.equal(memoryQuantity(512 * 1024 * 1024), "512Mi");
  assert.equal(memoryQuantity(2 * 1024 ** 3), "2Gi");
  assert.equal(memoryQuantity(1536 * 1024), "1536Ki");
  assert.equal(memoryQuantity(1000), "1000");
  assert.equal(cpuQuantity(500), "500m");
  assert.equal(cpuQuantity(1500), "1500m");
  assert.equal(cpuQuantity(2000), "2");
});

Deno.test("kubeName makes an RFC 1123 label of a Docker name", () => {
  assert.equal(kubeName("web"), "web");
  assert.equal(kubeName("My_App.1"), "my-app-1");
  assert.equal(kubeName("_x_"), "x");
  assert.equal(kubeName("a".repeat(80)).length, 63);
});

Deno.test("the Pod: apiVersion, kind, name, label, image, env, workingDir", () => {
  const out = kube([{ record: record(), image: PULLED }]);
  const lines = out.split("\n");
  for (
    const line of [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: web-pod",
      "  labels:",
      "    app: web",
      "spec:",
      "  restartPolicy: Never",
      "  containers:",
      "  - name: web",
      "    image: docker.io/library/busybox:latest",
      "    env:",
      "    - name: FOO",
      "      value: bar",
      "    workingDir: /srv",
    ]
  ) {
    assert.ok(lines.includes(line), `missing ${JSON.stringify(line)} in:\n${out}`);
  }
  assert.ok(!out.includes("PATH"), out);
  assert.ok(!out.includes("HOSTNAME"), out);
  assert.ok(!out.includes("must be pushed") && !out.includes("local image"), out);
  // The default hostname (the short ID) is not the Pod's.
  assert.ok(!out.includes("hostname:"), out);
});

Deno.test("a local image keeps its name with a comment that it must be pushed", () => {
  const out = kube([{
    record: record(),
    image: { pulled: false, reference: "docker.io/library/busybox:latest" },
  }]);
  assert.match(
    out,
    / {4}# busybox:latest is a local image: push it to a registry .* first\n {4}image: busybox:latest\n/,
  );
  const gone = kube([{ record: record(), image: null }]);
  assert.match(gone, /# busybox:latest is no longer in the store.*\n {4}image: busybox:latest\n/);
});

Deno.test("ENTRYPOINT is command and CMD args; only what differs from the image when it is known", () => {
  // Image unknown: both, as they are.
  const both = record({ config: { entrypoint: ["/bin/sh", "-c"], cmd: ["echo hi"] } });
  assert.deepEqual(commandAndArgs(both, null), { command: ["/bin/sh", "-c"], args: ["echo hi"] });
  // The image's Cmd overridden, its (absent) entrypoint kept: args only.
  assert.deepEqual(commandAndArgs(record(), PULLED), { args: ["httpd", "-f", "-p", "80"] });
  // All inherited: neither.
  assert.deepEqual(commandAndArgs(record({ config: { cmd: ["sh"] } }), PULLED), {});
  // A new entrypoint: command, and the args with it (a Pod's command drops the image's Cmd).
  const ep = record({ config: { entrypoint: ["/bin/env"], cmd: ["sh"] } });
  assert.deepEqual(commandAndArgs(ep, PULLED), { command: ["/bin/env"], args: ["sh"] });
  const out = kube([{ record: both, image: null }]);
  assert.match(out, / {4}command:\n {4}- \/bin\/sh\n {4}- "-c"\n {4}args:\n {4}- "echo hi"\n/);
  assert.match(
    kube([{ record: record(), image: PULLED }]),
    / {4}args:\n {4}- httpd\n {4}- "-f"\n {4}- "-p"\n {4}- "80"\n/,
  );
});

Deno.test("env: without PATH, HOSTNAME and what the image sets; values quoted", () => {
  const r = record({ config: { env: ["PATH=/x", "HOSTNAME=h", "A=1", "B=a: b", "C", "D=x=y"] } });
  assert.deepEqual(podEnv(r, { pulled: true, reference: "x", config: { Env: ["A=1"] } }), [
    { name: "B", value: "a: b" },
    { name: "C", value: "" },
    { name: "D", value: "x=y" },
  ]);
  const out = kube([{ record: r, image: null }]);
  assert.match(out, / {4}- name: A\n {6}value: "1"\n {4}- name: B\n {6}value: "a: b"\n/);
});

Deno.test("securityContext: numeric user and group; a named user is a comment", () => {
  const numeric = kube([{ record: record({ config: { user: "1000:100" } }), image: null }]);
  assert.match(numeric, / {4}securityContext:\n {6}runAsUser: 1000\n {6}runAsGroup: 100\n/);
  const uidOnly = kube([{ record: record({ config: { user: "33" } }), image: null }]);
  assert.match(uidOnly, / {4}securityContext:\n {6}runAsUser: 33\n/);
  assert.ok(!uidOnly.includes("runAsGroup"));
  const named = kube([{ record: record({ config: { user: "nobody" } }), image: null }]);
  assert.match(named, / {4}# user nobody: Kubernetes takes numeric IDs only/);
  assert.ok(!named.includes("runAsUser:"));
  const ro = kube([{ record: record({ hostConfig: { readOnly: true } }), image: null }]);
  assert.match(ro, / {4}securityContext:\n {6}readOnlyRootFilesystem: true\n/);
});

Deno.test("ports: containerPort, hostPort and protocol", () => {
  const r = record({
    hostConfig: {
      portBindings: [
        { hostIp: "", hostPort: 18080, containerPort: 80, protocol: "tcp" },
        { hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53, protocol: "udp" },
      ],
    },
  });
  const out = kube([{ record: r, image: null }]);
  assert.match(
    out,
    / {4}ports:\n {4}- containerPort: 80\n {6}hostPort: 18080\n {6}protocol: TCP\n {4}- containerPort: 53\n {6}hostPort: 5353\n {6}hostIP: "127.0.0.1"\n {6}protocol: UDP\n/,
  );
});

Deno.test("resources.limits: memory and CPUs; --pids-limit is a comment", () => {
  const r = record({ hostConfig: { memory: 512 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 100 } });
  const out = kube([{ record: r, image: null }]);
  assert.match(out, / {4}resources:\n {6}limits:\n {8}memory: 512Mi\n {8}cpu: 500m\n/);
  assert.match(out, /# --pids-limit 100 has no per-container equivalent/);
  const quota = kube([{
    record: record({ hostConfig: { cpuQuota: 150_000, cpuPeriod: 100_000 } }),
    image: null,
  }]);
  assert.match(quota, / {8}cpu: 1500m\n/);
  assert.ok(!kube([{ record: record(), image: null }]).includes("resources:"));
});

Deno.test("volumes: bind → hostPath, named volume → persistentVolumeClaim, tmpfs → emptyDir in memory", () => {
  const r = record({
    hostConfig: {
      mounts: [
        { type: "bind", source: "/host/dir", target: "/mnt", readOnly: true },
        { type: "bind", source: "/host/file.conf", target: "/etc/app.conf", readOnly: false },
        {
          type: "volume",
          name: "data",
          source: "/store/volumes/data/_data",
          target: "/data",
          readOnly: false,
        },
        { type: "tmpfs", source: "", target: "/run", readOnly: false, options: ["size=64m"] },
        { type: "volume", name: "f00", source: "", target: "/cache", readOnly: false, anonymous: true },
      ],
    },
  });
  const out = kube([{
    record: r,
    image: null,
    bindKinds: { "/host/dir": "Directory", "/host/file.conf": "File" },
  }]);
  assert.ok(
    out.includes(
      [
        "    volumeMounts:",
        "    - name: host-dir-host",
        "      mountPath: /mnt",
        "      readOnly: true",
        "    - name: host-file-conf-host",
        "      mountPath: /etc/app.conf",
        "    - name: data-pvc",
        "      mountPath: /data",
        "    - name: tmpfs-run",
        "      mountPath: /run",
        "    - name: anonymous-volume",
        "      mountPath: /cache",
      ].join("\n"),
    ),
    out,
  );
  assert.ok(
    out.endsWith(
      [
        "  volumes:",
        "  - name: host-dir-host",
        "    hostPath:",
        "      path: /host/dir",
        "      type: Directory",
        "  - name: host-file-conf-host",
        "    hostPath:",
        "      path: /host/file.conf",
        "      type: File",
        "  - name: data-pvc",
        "    persistentVolumeClaim:",
        "      claimName: data",
        "  - name: tmpfs-run",
        "    emptyDir:",
        "      medium: Memory",
        "      sizeLimit: 64Mi",
        "  - name: anonymous-volume",
        "    emptyDir: {}",
        "",
      ].join("\n"),
    ),
    out,
  );
});

Deno.test("restartPolicy: Docker's policies mapped; the first container's, with a comment when they differ", () => {
  const policy = (name: "no" | "on-failure" | "always" | "unless-stopped") =>
    record({ hostConfig: { restartPolicy: { name, maximumRetryCount: 0 } } });
  assert.match(kube([{ record: policy("no"), image: null }]), / {2}restartPolicy: Never\n/);
  assert.match(kube([{ record: policy("on-failure"), image: null }]), / {2}restartPolicy: OnFailure\n/);
  assert.match(kube([{ record: policy("always"), image: null }]), / {2}restartPolicy: Always\n/);
  assert.match(
    kube([{ record: policy("unless-stopped"), image: null }]),
    /unless-stopped.*\n {2}restartPolicy: Always\n/,
  );
  const mixed = kube([
    { record: { ...policy("always"), name: "a" }, image: null },
    { record: { ...policy("no"), name: "b" }, image: null },
  ]);
  assert.match(
    mixed,
    / {2}# the containers' restart policies differ \(always, no\).*first container's\n {2}restartPolicy: Always\n/,
  );
  // One Pod named after the first container, holding both.
  assert.match(mixed, / {2}name: a-pod\n/);
  assert.match(mixed, / {2}- name: a\n[^]* {2}- name: b\n/);
});

Deno.test("--service: a NodePort Service for the published ports after ---", () => {
  const r = record({
    hostConfig: {
      portBindings: [
        { hostIp: "", hostPort: 30080, containerPort: 80, protocol: "tcp" },
        { hostIp: "", hostPort: 18443, containerPort: 443, protocol: "tcp" },
      ],
    },
  });
  assert.ok(!kube([{ record: r, image: null }]).includes("---"));
  const out = kube([{ record: r, image: null }], true);
  const service = out.slice(out.indexOf("---\n"));
  assert.ok(
    service.startsWith(
      [
        "---",
        "apiVersion: v1",
        "kind: Service",
        "metadata:",
        "  name: web-pod",
        "  labels:",
        "    app: web",
        "spec:",
        "  type: NodePort",
        "  selector:",
        "    app: web",
        "  ports:",
        "  - name: 80-tcp",
        "    port: 80",
        "    targetPort: 80",
        "    protocol: TCP",
        "    nodePort: 30080",
        "  - name: 443-tcp",
        "    port: 443",
      ].join("\n"),
    ),
    service,
  );
  assert.match(service, /host port 18443 is outside the default NodePort range/);
  assert.match(kube([{ record: record(), image: null }], true), /---\n# no published ports: no Service\n/);
});

Deno.test("a hostname of the user's, and --network host", () => {
  assert.match(
    kube([{ record: record({ config: { hostname: "myhost" } }), image: null }]),
    / {2}hostname: myhost\n/,
  );
  const host = kube([{ record: record({ hostConfig: { networkMode: "host" } }), image: null }]);
  assert.match(host, / {2}hostNetwork: true\n/);
});

Deno.test({
  name: "yamlString: PyYAML reads every quoted and plain string back as itself",
  ignore: !havePyYaml(),
  async fn() {
    const strings = [
      "a: b",
      "a #b",
      "#x",
      "  lead",
      "trail ",
      'say "hi"',
      "it's",
      "line1\nline2",
      "true",
      "False",
      "yes",
      "off",
      "null",
      "~",
      "",
      "80",
      "0x1F",
      "1.5",
      "-1",
      "1:30",
      ".inf",
      "2001-12-14",
      "key:",
      "- item",
      "[a]",
      "{a}",
      "*ref",
      "&anchor",
      "!tag",
      "|",
      ">",
      "@x",
      "`x`",
      "%x",
      "tab\there",
      "del\u007f",
      "héllo",
      "\u2028",
      "busybox",
      "docker.io/library/busybox:latest",
      "/srv/data",
      "a-b_c.d",
      "x=y",
      "a:b",
      "N",
      "Yes",
      "NULL",
    ];
    const yaml = strings.map((s) => `- ${yamlString(s)}`).join("\n") + "\n";
    const [parsed] = await parseYaml(yaml);
    assert.deepEqual(parsed, strings);
  },
});
