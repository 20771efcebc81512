import assert from "node:assert/strict";
import { formatTable } from "../../lib/table.ts";

Deno.test("formatTable pads each column to its widest cell plus three spaces; the last is not padded", () => {
  const out = formatTable(["CONTAINER ID", "IMAGE", "NAMES"], [
    ["0123456789ab", "busybox:latest", "happy_turing"],
    ["fedcba987654", "alpine", "x"],
  ]);
  assert.equal(
    out,
    "CONTAINER ID   IMAGE            NAMES\n" +
      "0123456789ab   busybox:latest   happy_turing\n" +
      "fedcba987654   alpine           x\n",
  );
});

Deno.test("formatTable with no rows prints the header alone", () => {
  assert.equal(formatTable(["REPOSITORY", "TAG", "SIZE"], []), "REPOSITORY   TAG   SIZE\n");
});

Deno.test("formatTable: a wide cell in a middle column widens that column for every row", () => {
  const out = formatTable(["A", "B", "C"], [["1", "a-very-long-cell", "z"], ["2", "b", "y"]]);
  const lines = out.split("\n");
  assert.equal(lines.length, 4); // three lines and the final newline
  const cCol = lines[0].indexOf("C");
  assert.equal(lines[1].indexOf("z"), cCol);
  assert.equal(lines[2].indexOf("y"), cCol);
  assert.equal(cCol, "1   a-very-long-cell   ".length);
  for (const line of lines.slice(0, 3)) assert.ok(!line.endsWith(" "), JSON.stringify(line));
});
