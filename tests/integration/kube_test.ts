/** `floka generate kube`: a running container as a Kubernetes Pod manifest (and Service). */
import assert from "node:assert/strict";
import { havePyYaml, parseYaml } from "../fixtures/pyyaml.ts";
import { integrationTest, show, withStore } from "./helpers.ts";

integrationTest("generate kube: a container's Pod manifest, and its Service with --service", async () => {
  await withStore(async (s) => {
    const run = await s.run([
      "--name",
      "web",
      "-d",
      "-e",
      "FOO=bar",
      "-w",
      "/srv",
      "-m",
      "64m",
      "--cpus",
      "0.5",
      "-v",
      "data:/data",
      "-p",
      "18080:80",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
    ]);
    assert.equal(run.code, 0, show(run));
    try {
      const r = await s.floka(["generate", "kube", "web"]);
      assert.equal(r.code, 0, show(r));
      const lines = r.stdout.split("\n");
      for (
        const line of [
          "apiVersion: v1",
          "kind: Pod",
          "  name: web-pod",
          "    app: web",
          "  restartPolicy: Never",
          "  - name: web",
          "    image: busybox:latest",
          "    args:",
          "    - httpd",
          '    - "-f"',
          "    - name: FOO",
          "      value: bar",
          "    workingDir: /srv",
          "    - containerPort: 80",
          "      hostPort: 18080",
          "      protocol: TCP",
          "        memory: 64Mi",
          "        cpu: 500m",
          "    - name: data-pvc",
          "      mountPath: /data",
          "    persistentVolumeClaim:",
          "      claimName: data",
        ]
      ) {
        assert.ok(lines.includes(line), `missing ${JSON.stringify(line)} in:\n${r.stdout}`);
      }
      // The test's busybox is hand-placed: a local image, to be pushed first.
      assert.match(r.stdout, /# busybox:latest is a local image: push it/);
      assert.ok(!/name: (PATH|HOSTNAME)$/m.test(r.stdout), r.stdout);
      assert.ok(!r.stdout.includes("---"), r.stdout);

      const svc = await s.floka(["generate", "kube", "--service", "web"]);
      assert.equal(svc.code, 0, show(svc));
      assert.ok(svc.stdout.startsWith(r.stdout), svc.stdout);
      assert.match(
        svc.stdout,
        /\n---\napiVersion: v1\nkind: Service\n[^]* {2}type: NodePort\n[^]* {4}port: 80\n/,
      );

      if (havePyYaml()) {
        // deno-lint-ignore no-explicit-any
        const [pod, service] = await parseYaml(svc.stdout) as any[];
        assert.equal(pod.kind, "Pod");
        assert.deepEqual(pod.metadata, { name: "web-pod", labels: { app: "web" } });
        const c = pod.spec.containers[0];
        assert.equal(c.name, "web");
        assert.equal(c.image, "busybox:latest");
        assert.deepEqual(c.args, ["httpd", "-f", "-p", "80"]);
        assert.deepEqual(c.env, [{ name: "FOO", value: "bar" }]);
        assert.equal(c.workingDir, "/srv");
        assert.deepEqual(c.ports, [{ containerPort: 80, hostPort: 18080, protocol: "TCP" }]);
        assert.deepEqual(c.resources, { limits: { memory: "64Mi", cpu: "500m" } });
        assert.deepEqual(c.volumeMounts, [{ name: "data-pvc", mountPath: "/data" }]);
        assert.deepEqual(pod.spec.volumes, [{
          name: "data-pvc",
          persistentVolumeClaim: { claimName: "data" },
        }]);
        assert.equal(service.kind, "Service");
        assert.equal(service.spec.type, "NodePort");
        assert.deepEqual(service.spec.selector, { app: "web" });
        assert.deepEqual(service.spec.ports, [{ name: "80-tcp", port: 80, targetPort: 80, protocol: "TCP" }]);
      } else {
        console.error("generate kube: python3 with PyYAML not found: the output is not parsed as YAML");
      }
    } finally {
      await s.floka(["rm", "-f", "web"]);
    }
  });
});

integrationTest("generate kube: an unknown container, or no container, fails with 125", async () => {
  await withStore(async (s) => {
    const r = await s.floka(["generate", "kube", "nosuch"]);
    assert.equal(r.code, 125, show(r));
    assert.match(r.stderr, /No such container: nosuch/);
    assert.equal(r.stdout, "");
    const none = await s.floka(["generate", "kube"]);
    assert.equal(none.code, 125, show(none));
    const sub = await s.floka(["generate", "compose", "x"]);
    assert.equal(sub.code, 125, show(sub));
  });
});
