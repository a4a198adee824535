// A small SVG writer for benchmark charts: grouped bar panels (one group per load shape,
// one bar per system), optionally on a log scale, with a whisker per bar (e.g. p99 above
// a p50 bar) and the value written above each bar. No dependencies; the output is a
// standalone .svg any browser shows.

export interface Series {
  name: string;
  color: string;
  /** One value per group; NaN or undefined = no bar (not measured). */
  values: (number | undefined)[];
  /** Optional second value per group drawn as a whisker from the bar's top (e.g. p99). */
  whiskers?: (number | undefined)[];
}

export interface Panel {
  title: string;
  /** Axis label, with its unit. */
  unit: string;
  groups: string[];
  series: Series[];
  log: boolean;
  /** How a value is written above its bar. */
  format?: (v: number) => string;
}

const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

/** Colors that stay apart for color-blind readers (Okabe-Ito). */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00'];

export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 2)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One panel at (x, y) of size w × h, as SVG elements. */
function panel(p: Panel, x: number, y: number, w: number, h: number): string {
  const out: string[] = [];
  const fmt = p.format ?? shortNumber;
  const left = 70;
  const top = 34;
  const bottom = 46;
  const plotW = w - left - 12;
  const plotH = h - top - bottom;
  const px = x + left;
  const py = y + top;
  const all = p.series
    .flatMap((s) => [...s.values, ...(s.whiskers ?? [])])
    .filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
  const maxV = all.length > 0 ? Math.max(...all) : 1;
  const minV = all.length > 0 ? Math.min(...all) : 1;
  // Log scale: whole decades around the data; linear: 0 to a round number above the max.
  let lo: number;
  let hi: number;
  const ticks: number[] = [];
  if (p.log) {
    lo = 10 ** Math.floor(Math.log10(minV));
    hi = 10 ** Math.ceil(Math.log10(maxV * 1.6));
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    lo = 0;
    const step = 10 ** Math.floor(Math.log10(maxV));
    hi = Math.ceil((maxV * 1.15) / step) * step;
    for (let t = 0; t <= hi * 1.0001; t += hi / 5) ticks.push(t);
  }
  const yOf = (v: number) =>
    p.log
      ? py + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH
      : py + plotH - ((v - lo) / (hi - lo)) * plotH;

  out.push(
    `<text x="${x + w / 2}" y="${y + 20}" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(p.title)}</text>`,
  );
  for (const t of ticks) {
    const ty = yOf(Math.max(t, p.log ? lo : 0));
    out.push(`<line x1="${px}" x2="${px + plotW}" y1="${ty}" y2="${ty}" stroke="#ddd" stroke-width="1"/>`);
    out.push(
      `<text x="${px - 6}" y="${ty + 4}" text-anchor="end" font-size="11" fill="#444" ${FONT}>${esc(shortNumber(t))}</text>`,
    );
  }
  out.push(
    `<text transform="translate(${x + 16} ${py + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="#222" ${FONT}>${esc(p.unit)}${p.log ? ' (log scale)' : ''}</text>`,
  );
  out.push(`<line x1="${px}" x2="${px}" y1="${py}" y2="${py + plotH}" stroke="#888"/>`);
  out.push(`<line x1="${px}" x2="${px + plotW}" y1="${py + plotH}" y2="${py + plotH}" stroke="#888"/>`);

  const groupW = plotW / p.groups.length;
  const barW = Math.min(46, (groupW * 0.8) / p.series.length);
  p.groups.forEach((g, gi) => {
    const gx = px + gi * groupW + (groupW - barW * p.series.length) / 2;
    out.push(
      `<text x="${px + gi * groupW + groupW / 2}" y="${py + plotH + 18}" text-anchor="middle" font-size="12" ${FONT}>${esc(g)}</text>`,
    );
    p.series.forEach((s, si) => {
      const v = s.values[gi];
      const bx = gx + si * barW;
      if (v === undefined || !Number.isFinite(v) || v <= 0) {
        out.push(
          `<text x="${bx + barW / 2}" y="${py + plotH - 6}" text-anchor="middle" font-size="10" fill="#999" ${FONT}>n/a</text>`,
        );
        return;
      }
      const by = yOf(Math.max(v, lo));
      out.push(
        `<rect x="${bx + 1}" y="${by}" width="${barW - 2}" height="${py + plotH - by}" fill="${s.color}"><title>${esc(`${s.name}, ${g}: ${fmt(v)}`)}</title></rect>`,
      );
      const wv = s.whiskers?.[gi];
      let labelY = by - 4;
      if (wv !== undefined && Number.isFinite(wv) && wv > v) {
        const wy = yOf(wv);
        const cx = bx + barW / 2;
        out.push(`<line x1="${cx}" x2="${cx}" y1="${by}" y2="${wy}" stroke="#222" stroke-width="1.5"/>`);
        out.push(
          `<line x1="${cx - barW / 4}" x2="${cx + barW / 4}" y1="${wy}" y2="${wy}" stroke="#222" stroke-width="1.5"/>`,
        );
        labelY = wy - 4;
      }
      out.push(
        `<text x="${bx + barW / 2}" y="${labelY}" text-anchor="middle" font-size="10" fill="#111" ${FONT}>${esc(fmt(v))}</text>`,
      );
    });
  });
  return out.join('\n');
}

/**
 * A figure: a title, a legend of the series (from the first panel), notes under it, and
 * the panels side by side in rows of `columns`.
 */
export function figure(o: {
  title: string;
  subtitle: string[];
  panels: Panel[];
  columns?: number;
  legendNote?: string;
}): string {
  const columns = o.columns ?? 2;
  const pw = 560;
  const ph = 360;
  const headH = 62 + o.subtitle.length * 16;
  const rows = Math.ceil(o.panels.length / columns);
  const width = pw * columns + 20;
  const height = headH + rows * ph + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="26" font-size="18" font-weight="bold" ${FONT}>${esc(o.title)}</text>`,
  ];
  o.subtitle.forEach((line, i) => {
    out.push(`<text x="16" y="${46 + i * 16}" font-size="12" fill="#333" ${FONT}>${esc(line)}</text>`);
  });
  // Legend.
  let lx = 16;
  const ly = headH - 10;
  for (const s of o.panels[0]?.series ?? []) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly}" font-size="12" ${FONT}>${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  if (o.legendNote)
    out.push(`<text x="${lx + 8}" y="${ly}" font-size="11" fill="#555" ${FONT}>${esc(o.legendNote)}</text>`);
  o.panels.forEach((p, i) => {
    out.push(panel(p, 10 + (i % columns) * pw, headH + Math.floor(i / columns) * ph, pw, ph));
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
