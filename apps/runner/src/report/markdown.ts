import type { Column } from '../table.js';

/** A Markdown (GitHub) table; `|` inside cells is escaped. */
export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const escapePipes = (text: string) => text.replaceAll('|', '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(escapePipes).join(' | ')} |`;
  return [
    line(columns.map((c) => c.heading)),
    `|${columns.map((c) => (c.align === 'right' ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map(line),
  ];
}
