/** Columns padded like Docker's tabwriter output (three spaces between columns). */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((r) => r[col].length)));
  return all
    .map((r) => r.map((cell, col) => col === r.length - 1 ? cell : cell.padEnd(widths[col] + 3)).join(""))
    .join("\n") + "\n";
}
