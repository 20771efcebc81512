import assert from "node:assert/strict";
import {
  alignColumns,
  dockerTime,
  expandEscapes,
  formatList,
  formatObjects,
  goString,
  parseTemplate,
  renderTemplate,
  TemplateError,
  templateFields,
} from "../../src/cli/format.ts";
import { EXIT_FLOKA } from "../../lib/errors.ts";

const render = (format: string, data: unknown) => renderTemplate(parseTemplate(format), data);

const CONTAINER = {
  Id: "abc",
  State: { Status: "running", Running: true, Pid: 42, ExitCode: 0 },
  Config: { Env: ["A=1", "B=2"], Cmd: ["sh", "-c", "echo hi"], Labels: { k: "v" } },
  Mounts: [],
  Nothing: null,
};

Deno.test("template: fields, dotted paths and literal text", () => {
  assert.equal(render("{{.Id}}", CONTAINER), "abc");
  assert.equal(render("{{.State.Status}}", CONTAINER), "running");
  assert.equal(
    render("id={{.Id}} pid={{.State.Pid}} up={{.State.Running}}", CONTAINER),
    "id=abc pid=42 up=true",
  );
  assert.equal(render("{{ .State.ExitCode }}", CONTAINER), "0");
  assert.equal(render("no actions", CONTAINER), "no actions");
});

Deno.test("template: json of a value and of the whole object", () => {
  assert.equal(render("{{json .Config}}", CONTAINER), JSON.stringify(CONTAINER.Config));
  assert.equal(render("{{json .}}", { A: 1 }), '{"A":1}');
  assert.equal(render("{{json .Mounts}}", CONTAINER), "[]");
  assert.equal(render("{{json .Nothing}}", CONTAINER), "null");
});

Deno.test("template: values print as Go prints them", () => {
  assert.equal(render("{{.Config.Cmd}}", CONTAINER), "[sh -c echo hi]");
  assert.equal(render("{{.Config.Labels}}", CONTAINER), "map[k:v]");
  assert.equal(render("{{.Nothing}}", CONTAINER), "<nil>");
  assert.equal(goString({ b: 2, a: [1, 2] }), "map[a:[1 2] b:2]");
});

Deno.test("template: functions join, index, upper, lower, len", () => {
  assert.equal(render('{{join .Config.Env ","}}', CONTAINER), "A=1,B=2");
  assert.equal(render('{{index .Config.Labels "k"}}', CONTAINER), "v");
  assert.equal(render("{{upper .State.Status}}", CONTAINER), "RUNNING");
  assert.equal(render("{{lower .Id}}", { Id: "ABC" }), "abc");
  assert.equal(render("{{len .Config.Env}}", CONTAINER), "2");
});

Deno.test("template: \\t and \\n typed in a format become a tab and a newline", () => {
  assert.equal(expandEscapes("a\\tb\\nc"), "a\tb\nc");
  assert.equal(render("{{.Id}}\\t{{.State.Status}}", CONTAINER), "abc\trunning");
  assert.equal(render("{{- .Id -}}  !", CONTAINER), "abc!");
});

Deno.test("template: an unknown field or function is a clear error with exit 125", () => {
  for (const bad of ["{{.Nope}}", "{{.State.Nope}}", "{{.Id.Deeper}}", "{{nope .Id}}", "{{.Id", "{{}}"]) {
    assert.throws(
      () => render(bad, CONTAINER),
      (err: unknown) => err instanceof TemplateError && err.exitCode === EXIT_FLOKA,
      bad,
    );
  }
  assert.throws(() => render("{{.Nope}}", CONTAINER), /can't evaluate field Nope.*fields are: Id, State/);
});

Deno.test("templateFields names the top-level fields a template uses", () => {
  assert.deepEqual(templateFields(parseTemplate("{{.ID}}\\t{{json .State.Status}} {{.}}")), ["ID", "State"]);
});

const ROWS = [{ ID: "1", Names: "a" }, { ID: "22", Names: "bbbbbb" }];
const list = (format: string | undefined) =>
  formatList(format, {
    items: ROWS,
    view: (r) => r,
    headers: { ID: "CONTAINER ID", Names: "NAMES" },
    sample: { ID: "", Names: "" },
    defaultTable: () => "DEFAULT\n",
  });

Deno.test("formatList: no format or 'table' is the default table; json is one object per line", () => {
  assert.equal(list(undefined), "DEFAULT\n");
  assert.equal(list("table"), "DEFAULT\n");
  assert.equal(list("json"), '{"ID":"1","Names":"a"}\n{"ID":"22","Names":"bbbbbb"}\n');
  for (const line of list("json").trim().split("\n")) {
    assert.deepEqual(Object.keys(JSON.parse(line)), ["ID", "Names"]);
  }
});

Deno.test("formatList: a template prints one line per object; 'table TEMPLATE' has a header and columns", () => {
  assert.equal(list("{{.Names}}"), "a\nbbbbbb\n");
  assert.equal(list("{{.ID}}: {{.Names}}"), "1: a\n22: bbbbbb\n");
  assert.equal(
    list("table {{.ID}}\\t{{.Names}}"),
    "CONTAINER ID   NAMES\n1              a\n22             bbbbbb\n",
  );
  assert.equal(list("table {{.Names}}"), "NAMES\na\nbbbbbb\n");
});

Deno.test("formatList: a bad field fails even when there is nothing to list", () => {
  assert.throws(
    () =>
      formatList("{{.Nope}}", {
        items: [],
        view: (r) => r,
        headers: {},
        sample: { ID: "" },
        defaultTable: () => "",
      }),
    TemplateError,
  );
});

Deno.test("formatObjects: indented array by default, compact array for json, a line per object for a template", () => {
  const objs = [{ A: 1, B: { C: "x" } }, { A: 2, B: { C: "y" } }];
  assert.equal(formatObjects(undefined, objs), JSON.stringify(objs, null, 4) + "\n");
  assert.equal(formatObjects("json", objs), JSON.stringify(objs) + "\n");
  assert.equal(formatObjects("{{.B.C}}", objs), "x\ny\n");
});

Deno.test("alignColumns pads tab-separated cells like Docker's tabwriter", () => {
  assert.equal(alignColumns(["A\tBB", "ccc\td"]), "A     BB\nccc   d\n");
});

Deno.test("dockerTime is Docker's CreatedAt text", () => {
  assert.equal(dockerTime(new Date("2026-03-01T12:00:05.123Z")), "2026-03-01 12:00:05 +0000 UTC");
});

Deno.test("psView has docker ps --format's field names and values", async () => {
  const { psView } = await import("../../src/cli/ps.ts");
  const now = Date.parse("2026-03-01T12:00:00Z");
  const view = psView(
    {
      dir: "/x",
      state: { status: "running", pid: 10, startedAt: "2026-03-01T11:59:57Z" },
      record: {
        id: "0123456789abcdef".repeat(4),
        name: "web",
        created: "2026-03-01T11:55:00Z",
        image: "busybox:latest",
        lowerDirs: [],
        path: "sleep",
        args: ["1000"],
        config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
        hostConfig: {
          autoRemove: false,
          networkMode: "bridge",
          memory: 0,
          cpuShares: 0,
          portBindings: [{ hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" }],
        },
      },
    },
    now,
    false,
  );
  assert.deepEqual(
    Object.keys(view).sort(),
    [
      "Command",
      "CreatedAt",
      "ID",
      "Image",
      "Labels",
      "LocalVolumes",
      "Mounts",
      "Names",
      "Networks",
      "Ports",
      "RunningFor",
      "Size",
      "State",
      "Status",
    ],
  );
  assert.equal(view.ID, "0123456789ab");
  assert.equal(view.Command, '"sleep 1000"');
  assert.equal(view.CreatedAt, "2026-03-01 11:55:00 +0000 UTC");
  assert.equal(view.RunningFor, "5 minutes ago");
  assert.equal(view.Status, "Up 3 seconds");
  assert.equal(view.State, "running");
  assert.equal(view.Ports, "0.0.0.0:8080->80/tcp");
});

Deno.test("system df: Docker's table, integer percentages, none for the build cache or an empty total", async () => {
  const { dfSummary, reclaimableText } = await import("../../src/cli/system.ts");
  const row = (type: string, size: number, reclaimable: number, percent = true) => ({
    type,
    total: 2,
    active: 1,
    size,
    reclaimable,
    percent,
  });
  assert.equal(reclaimableText(row("Images", 3000, 2000)), "2kB (66%)");
  assert.equal(reclaimableText(row("Images", 0, 0)), "0B");
  assert.equal(reclaimableText(row("Build Cache", 10, 10, false)), "10B");
  const text = dfSummary({
    rows: [
      row("Images", 5_570_000, 3_590_000),
      row("Local Volumes", 0, 0),
      row("Build Cache", 1970, 1970, false),
    ],
    images: [],
    containers: [],
    volumes: [],
  });
  assert.equal(
    text,
    [
      "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE",
      "Images          2         1         5.57MB    3.59MB (64%)",
      "Local Volumes   2         1         0B        0B",
      "Build Cache     2         1         1.97kB    1.97kB",
      "",
    ].join("\n"),
  );
});
