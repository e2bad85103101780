/** A column of a text table: its heading and whether numbers align right. */
export interface Column {
  heading: string;
  align?: 'left' | 'right';
}

/** Lines of a plain-text table with a heading row and padded columns. */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((column, i) =>
    Math.max(column.heading.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (columns[i]?.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.heading)), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** A count with thousands separators, e.g. `1,234,567`. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
