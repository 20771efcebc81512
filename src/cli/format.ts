/**
 * `--format`, as Docker's CLI reads it: `json` (one JSON object per line), `table` (the
 * default table), `table TEMPLATE` (a table whose header names the template's fields), or a
 * template printed once per object.
 *
 * Templates are a small subset of Go's text/template, enough for what people type:
 * `{{.Field}}`, dotted paths (`{{.State.Status}}`), `{{.}}`, `{{json .Config}}`, and the
 * functions `json`, `upper`, `lower`, `title`, `join .List ","`, `index .Map "key"`, `len`.
 * `\t` and `\n` typed in the format become a tab and a newline, as in Docker. A field the
 * object does not have is an error (exit 125) that lists the fields it has.
 */
import { FlokaError } from "../../lib/errors.ts";
import { formatTable } from "../../lib/table.ts";

/** A template error: the format given cannot be used for this command's objects. */
export class TemplateError extends FlokaError {}

type Arg = { kind: "path"; path: string[] } | { kind: "string"; value: string };
type Node = { kind: "text"; text: string } | {
  kind: "action";
  fn: string | null;
  args: Arg[];
  source: string;
};

export interface Template {
  source: string;
  nodes: Node[];
}

const FUNCTIONS: Readonly<Record<string, (args: unknown[]) => unknown>> = {
  json: (a) => JSON.stringify(a[0] === undefined ? null : a[0]),
  upper: (a) => goString(a[0]).toUpperCase(),
  lower: (a) => goString(a[0]).toLowerCase(),
  title: (a) => goString(a[0]).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (a) => {
    if (!Array.isArray(a[0])) throw new TemplateError(`join: expected a list, got ${goString(a[0])}`);
    return a[0].map(goString).join(goString(a[1] ?? ""));
  },
  index: (a) => {
    const [base, key] = a;
    if (base === null || typeof base !== "object") return undefined;
    return (base as Record<string, unknown>)[String(key)];
  },
  len: (a) => {
    const v = a[0];
    if (Array.isArray(v) || typeof v === "string") return v.length;
    if (v && typeof v === "object") return Object.keys(v).length;
    throw new TemplateError(`len of ${goString(v)}`);
  },
};

/** `\t`, `\n` (and `\\`) written in a format as two characters, as Docker expands them. */
export function expandEscapes(text: string): string {
  return text.replace(/\\([tn\\])/g, (_, c: string) => c === "t" ? "\t" : c === "n" ? "\n" : "\\");
}

function parseArg(word: string, source: string): Arg {
  if (word === ".") return { kind: "path", path: [] };
  if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(word)) return { kind: "path", path: word.slice(1).split(".") };
  if (/^"(?:[^"\\]|\\.)*"$/.test(word)) return { kind: "string", value: JSON.parse(word) };
  if (/^`[^`]*`$/.test(word)) return { kind: "string", value: word.slice(1, -1) };
  throw new TemplateError(`template parsing error: unsupported ${JSON.stringify(word)} in {{${source}}}`);
}

/** Parses `source` (escapes expanded first); throws a TemplateError for what it does not support. */
export function parseTemplate(source: string): Template {
  const text = expandEscapes(source);
  const nodes: Node[] = [];
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf("{{", at);
    if (open === -1) {
      nodes.push({ kind: "text", text: text.slice(at) });
      break;
    }
    if (open > at) nodes.push({ kind: "text", text: text.slice(at, open) });
    const close = text.indexOf("}}", open + 2);
    if (close === -1) {
      throw new TemplateError(`template parsing error: unclosed action in ${JSON.stringify(source)}`);
    }
    // `{{- x -}}` trims the spaces around the action, as in Go.
    let inner = text.slice(open + 2, close);
    if (inner.startsWith("- ")) {
      inner = inner.slice(2);
      const last = nodes.at(-1);
      if (last?.kind === "text") last.text = last.text.trimEnd();
    }
    let trimAfter = false;
    if (inner.endsWith(" -")) {
      inner = inner.slice(0, -2);
      trimAfter = true;
    }
    const words = inner.trim().match(/"(?:[^"\\]|\\.)*"|`[^`]*`|\S+/g) ?? [];
    const source_ = inner.trim();
    const [head, ...rest] = words;
    if (head === undefined) throw new TemplateError(`template parsing error: empty action {{}}`);
    if (head in FUNCTIONS) {
      nodes.push({ kind: "action", fn: head, args: rest.map((w) => parseArg(w, source_)), source: source_ });
    } else if (/^[a-z]/.test(head)) {
      throw new TemplateError(`template parsing error: function ${JSON.stringify(head)} not defined`);
    } else {
      if (rest.length) throw new TemplateError(`template parsing error: unsupported {{${source_}}}`);
      nodes.push({ kind: "action", fn: null, args: [parseArg(head, source_)], source: source_ });
    }
    at = close + 2;
    if (trimAfter) { while (at < text.length && /\s/.test(text[at])) at++; }
  }
  return { source, nodes };
}

/** The fields a template names at its top level (`.ID` of `{{.ID}}`, `.State` of `.State.Status`). */
export function templateFields(template: Template): string[] {
  return template.nodes.flatMap((n) =>
    n.kind === "action" ? n.args.flatMap((a) => a.kind === "path" && a.path.length ? [a.path[0]] : []) : []
  );
}

/** A value as Go's text/template prints it: lists `[a b]`, maps `map[k:v]`, null `<nil>`. */
export function goString(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return `[${value.map(goString).join(" ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    return `map[${entries.map(([k, v]) => `${k}:${goString(v)}`).join(" ")}]`;
  }
  return String(value);
}

function resolve(data: unknown, path: string[], source: string): unknown {
  let value = data;
  for (let i = 0; i < path.length; i++) {
    const shown = "." + path.slice(0, i + 1).join(".");
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new TemplateError(
        `template: executing {{${source}}}: can't evaluate field ${path[i]} of ${
          shown.slice(0, -path[i].length - 1) || "."
        }: not an object`,
      );
    }
    if (!Object.hasOwn(value, path[i])) {
      const known = Object.keys(value).join(", ");
      throw new TemplateError(
        `template: executing {{${source}}}: can't evaluate field ${path[i]} (${shown}); fields are: ${known}`,
      );
    }
    value = (value as Record<string, unknown>)[path[i]];
  }
  return value;
}

/** Renders `template` for one object. */
export function renderTemplate(template: Template, data: unknown): string {
  return template.nodes.map((n) => {
    if (n.kind === "text") return n.text;
    const values = n.args.map((a) => a.kind === "string" ? a.value : resolve(data, a.path, n.source));
    const result = n.fn ? FUNCTIONS[n.fn](values) : values[0];
    return n.fn === "json" ? String(result) : goString(result);
  }).join("");
}

/** Checks a template against a sample object so a bad field fails before anything is printed. */
export function checkTemplate(template: Template, sample: unknown): void {
  renderTemplate(template, sample);
}

export interface ListFormat<T> {
  /** The objects to list, in order. */
  items: readonly T[];
  /** An object in Docker's `--format` shape (its field names: `ID`, `Names`, ...). */
  view: (item: T) => Record<string, unknown>;
  /** The header text of a field in a `table` template (`ID` is `CONTAINER ID` for ps). */
  headers: Readonly<Record<string, string>>;
  /** A sample view for checking the template when there are no objects. */
  sample: Record<string, unknown>;
  /** The default table (`--format table` or no format). */
  defaultTable: () => string;
}

/**
 * The output of a listing command for `format` (undefined: the default table). `json` is one
 * compact JSON object per line, as `docker ps --format json` prints.
 */
export function formatList<T>(format: string | undefined, list: ListFormat<T>): string {
  const trimmed = format?.trim();
  if (trimmed === undefined || trimmed === "" || trimmed === "table") return list.defaultTable();
  if (trimmed === "json") return list.items.map((i) => JSON.stringify(list.view(i)) + "\n").join("");
  const isTable = /^table\s/.test(format!);
  const template = parseTemplate(isTable ? format!.replace(/^table\s+/, "") : format!);
  checkTemplate(template, list.sample);
  const rendered = list.items.map((i) => renderTemplate(template, list.view(i)));
  if (!isTable) return rendered.map((r) => r + "\n").join("");
  const header = template.nodes.map((n) => {
    if (n.kind === "text") return n.text;
    const arg = n.args[0];
    const field = arg?.kind === "path" ? arg.path.join(".") : "";
    return list.headers[field] ?? field.toUpperCase();
  }).join("");
  return alignColumns([header, ...rendered]);
}

/** Lines whose cells are separated by tabs, padded into columns as Docker's tabwriter does. */
export function alignColumns(lines: readonly string[]): string {
  const out: string[] = [];
  // Each line may hold several output lines (a `\n` in the template): align them all.
  const rows = lines.flatMap((l) => l.split("\n")).map((l) => l.split("\t"));
  const columns = Math.max(...rows.map((r) => r.length));
  const padded = rows.map((r) => [...r, ...Array(columns - r.length).fill("")]);
  const [header, ...body] = padded;
  const table = formatTable(header, body).split("\n").map((l) => l.trimEnd());
  out.push(...table);
  return out.join("\n").replace(/\n*$/, "\n");
}

/** Docker's `CreatedAt` text: `2026-03-01 12:00:00 +0000 UTC`. */
export function dockerTime(date: Date): string {
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " +0000 UTC");
}

/**
 * `inspect --format`: the template rendered once per object, one line each; `json` prints
 * the objects as one compact JSON array. Without a format: the indented array.
 */
export function formatObjects(format: string | undefined, objects: readonly unknown[]): string {
  if (format === undefined || format === "") return JSON.stringify(objects, null, 4) + "\n";
  if (format.trim() === "json") return JSON.stringify(objects) + "\n";
  const template = parseTemplate(format);
  return objects.map((o) => renderTemplate(template, o) + "\n").join("");
}
