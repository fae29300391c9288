/**
 * PNG and SVG export of what the inspector shows. PNG is the canvas as drawn. SVG is built
 * from the matrix itself: one rectangle per cell up to SVG_LIMIT tokens a side; larger
 * matrices are block-averaged down to SVG_LIMIT x SVG_LIMIT first (a 1,024-token matrix as a
 * million rectangles would be a 100 MB file that no editor opens), and token labels are
 * written up to LABEL_LIMIT tokens.
 */
import { cssColor, downsample, normalise } from './data';
import { IHeatmapData, LABEL_LIMIT } from './heatmap';
import { esc } from './lines';

export const SVG_LIMIT = 128;

export function heatmapSVG(d: IHeatmapData, title: string): string {
  const small = downsample(d.values, d.rows, d.cols, SVG_LIMIT);
  const labelled = d.rows <= LABEL_LIMIT && d.cols <= LABEL_LIMIT;
  const cell = labelled ? 16 : Math.max(2, Math.floor(640 / Math.max(small.rows, small.cols)));
  const x0 = labelled ? 110 : 10;
  const y0 = labelled ? 110 : 30;
  let vmax = 0;
  for (let i = 0; i < small.values.length; i++) vmax = Math.max(vmax, small.values[i]);
  const width = x0 + cell * small.cols + 10;
  const height = y0 + cell * small.rows + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`
  ];
  if (!labelled) {
    const note =
      small.rows !== d.rows || small.cols !== d.cols
        ? ` (block means: ${d.rows}x${d.cols} shown as ${small.rows}x${small.cols})`
        : '';
    out.push(`<text x="${x0}" y="18">${esc(title + note)}</text>`);
  }
  for (let r = 0; r < small.rows; r++) {
    let top = vmax;
    if (d.perRow) {
      top = 0;
      for (let c = 0; c < small.cols; c++) top = Math.max(top, small.values[r * small.cols + c]);
    }
    for (let c = 0; c < small.cols; c++) {
      const v = small.values[r * small.cols + c];
      if (v <= 0) continue;
      out.push(
        `<rect x="${x0 + c * cell}" y="${y0 + r * cell}" width="${cell}" height="${cell}" ` +
          `fill="${cssColor(normalise(v, top, d.sqrt))}"/>`
      );
    }
  }
  out.push(
    `<rect x="${x0}" y="${y0}" width="${cell * small.cols}" height="${cell * small.rows}" ` +
      `fill="none" stroke="#999" stroke-width="0.5"/>`
  );
  if (labelled) {
    d.rowLabels.forEach((s, r) =>
      out.push(
        `<text x="${x0 - 4}" y="${y0 + (r + 0.5) * cell}" text-anchor="end" ` +
          `dominant-baseline="middle">${esc(s)}</text>`
      )
    );
    d.colLabels.forEach((s, c) => {
      const x = x0 + (c + 0.5) * cell;
      out.push(
        `<text transform="translate(${x},${y0 - 4}) rotate(-90)" dominant-baseline="middle">` +
          `${esc(s)}</text>`
      );
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Offer a file for download (a data or blob URL). */
export function download(url: string, filename: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
}

export function downloadText(text: string, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  download(url, filename);
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
