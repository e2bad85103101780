import { classNamesOf, type ImageSet, imageShapeOf, valuesPerImage } from '@decompose/cifar10/browser';
import { maxProbabilityDifference } from '../classify.js';
import type { ModelResult } from '../results.js';

/** Images shown in the gallery. */
const GALLERY_SIZE = 10;

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className !== undefined) node.className = className;
  return node;
}

function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`The page has no #${id} element`);
  return node;
}

/** Shows progress, or an error in red. */
export function renderStatus(text: string, isError = false): void {
  const status = byId('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

const kilobytes = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const percent = (fraction: number) => `${(100 * fraction).toFixed(1)} %`;

function layerSummary(classes: Record<string, number>): string {
  const convs = ['Conv2D', 'BasisConv2D']
    .filter((name) => classes[name] !== undefined)
    .map((name) => `${classes[name]} ${name}`);
  return convs.join(', ');
}

/** The side-by-side table: one column per model, and the compressed/original ratio. */
export function renderSummary(models: readonly ModelResult[], imageCount: number): void {
  const [original, compressed] = models;
  if (original === undefined || compressed === undefined) return;
  const table = byId('summary');
  const head = element('thead');
  const headRow = element('tr');
  for (const title of ['', 'original', 'compressed', 'compressed / original']) {
    headRow.append(element('th', title));
  }
  head.append(headRow);
  const agreement = original.classes.filter((c, i) => c === compressed.classes[i]).length / imageCount;
  const rows: [string, string, string, string][] = [
    ['model', original.url, compressed.url, ''],
    ['convolutions', layerSummary(original.layerClasses), layerSummary(compressed.layerClasses), ''],
    [
      'parameters',
      original.params.toLocaleString('en'),
      compressed.params.toLocaleString('en'),
      (compressed.params / original.params).toFixed(3),
    ],
    [
      'weights',
      kilobytes(original.weightBytes),
      kilobytes(compressed.weightBytes),
      (compressed.weightBytes / original.weightBytes).toFixed(3),
    ],
    [
      `accuracy (${imageCount} images)`,
      percent(original.accuracy),
      percent(compressed.accuracy),
      `${((compressed.accuracy - original.accuracy) * 100).toFixed(1)} pts`,
    ],
    [
      'time per image, batch 32',
      `${original.msPerImage.toFixed(2)} ms (${(1000 / original.msPerImage).toFixed(0)} img/s)`,
      `${compressed.msPerImage.toFixed(2)} ms (${(1000 / compressed.msPerImage).toFixed(0)} img/s)`,
      (compressed.msPerImage / original.msPerImage).toFixed(3),
    ],
    [
      'time per image, batch 1',
      `${original.msPerImageBatch1.toFixed(2)} ms (${(1000 / original.msPerImageBatch1).toFixed(0)} img/s)`,
      `${compressed.msPerImageBatch1.toFixed(2)} ms (${(1000 / compressed.msPerImageBatch1).toFixed(0)} img/s)`,
      (compressed.msPerImageBatch1 / original.msPerImageBatch1).toFixed(3),
    ],
    [
      'same class as original',
      '',
      percent(agreement),
      `max |Δp| ${maxProbabilityDifference(original.probabilities, compressed.probabilities).toFixed(4)}`,
    ],
  ];
  const body = element('tbody');
  for (const cells of rows) {
    const row = element('tr');
    row.append(...cells.map((text, i) => element(i === 0 ? 'th' : 'td', text)));
    body.append(row);
  }
  table.replaceChildren(head, body);
}

function drawImage(images: ImageSet, index: number): HTMLCanvasElement {
  const [height, width, channels] = imageShapeOf(images);
  const canvas = element('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  if (context === null) return canvas;
  const picture = context.createImageData(width, height);
  const start = index * valuesPerImage(images);
  for (let pixel = 0; pixel < height * width; pixel++) {
    const at = start + pixel * channels;
    // One channel is grey; of more, the first three are shown as RGB.
    for (let c = 0; c < 3; c++) picture.data[pixel * 4 + c] = images.images[at + (channels < 3 ? 0 : c)]!;
    picture.data[pixel * 4 + 3] = 255;
  }
  context.putImageData(picture, 0, 0);
  return canvas;
}

/** The first images with their true label and each model's prediction (green when right). */
export function renderGallery(images: ImageSet, models: readonly ModelResult[]): void {
  const gallery = byId('gallery');
  const classNames = classNamesOf(images);
  const figures: HTMLElement[] = [];
  for (let index = 0; index < Math.min(GALLERY_SIZE, images.count); index++) {
    const label = images.labels[index]!;
    const caption = element('figcaption');
    caption.append(element('strong', classNames[label]));
    for (const model of models) {
      const predicted = model.classes[index]!;
      const line = element('div', undefined, predicted === label ? 'right' : 'wrong');
      const probability = model.probabilities[index]?.[predicted] ?? 0;
      line.append(
        element('span', model.slot),
        element('span', `${classNames[predicted]} ${percent(probability)}`),
      );
      caption.append(line);
    }
    const figure = element('figure');
    figure.append(drawImage(images, index), caption);
    figures.push(figure);
  }
  gallery.replaceChildren(...figures);
}
