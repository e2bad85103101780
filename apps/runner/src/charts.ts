import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeAtomic } from './files.js';

/** A vega-lite spec rendered headless to SVG and PNG (`<base>.svg`, `<base>.png`). */
export async function renderChart(spec: TopLevelSpec, base: string): Promise<{ svg: string; png: string }> {
  const themed: TopLevelSpec = {
    ...spec,
    config: { font: 'DejaVu Sans', background: 'white', ...(spec.config ?? {}) },
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(themed).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true } })
    .render()
    .asPng();
  await writeAtomic(`${base}.svg`, svg);
  await writeAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}
