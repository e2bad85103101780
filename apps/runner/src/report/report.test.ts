import { describe, expect, it } from 'vitest';
import { budgetFieldSchema } from '../sensitivity/budget.js';
import { paretoFront } from './charts.js';
import { toCsv } from './csv.js';
import { markdownTable } from './markdown.js';
import { formatBudget } from './selection.js';

describe('report pieces', () => {
  it('finds the Pareto front: lower cost and higher accuracy', () => {
    const point = (name: string, x: number, accuracy: number) => ({ name, x, accuracy, baseline: false });
    const front = paretoFront([
      point('big', 10, 0.9),
      point('dominated', 8, 0.7),
      point('small', 2, 0.6),
      point('middle', 5, 0.8),
    ]);
    expect(front.map((p) => p.name)).toEqual(['small', 'middle', 'big']);
  });

  it('quotes CSV cells that need it and escapes pipes in Markdown cells', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          [1, null],
        ],
      ),
    ).toBe('a,b\n"x,y","say ""hi"""\n1,\n');
    expect(markdownTable([{ heading: 'h' }, { heading: 'n', align: 'right' }], [['a|b', '1']])).toEqual([
      '| h | n |',
      '| --- | ---: |',
      '| a\\|b | 1 |',
    ]);
  });

  it('reads budgets written as text and prints them back the same way', () => {
    for (const text of ['params:0.4', 'macs:0.25', 'time:0.3', 'drop:0.01']) {
      expect(formatBudget(budgetFieldSchema.parse(text))).toBe(text);
    }
    expect(budgetFieldSchema.safeParse('params:1.5').success).toBe(false);
    expect(budgetFieldSchema.safeParse({ kind: 'tolerance', maxDrop: 0.02 }).success).toBe(true);
  });
});
