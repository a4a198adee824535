// A run as a self-contained HTML page: what happened to each node over (virtual) time,
// drawn as an SVG timeline — one lane per node with its processes (up, starting, paused,
// down), its role in the metadata group and in each partition group, crashes and disk
// faults; a lane of network and operator faults; a lane per client with its operations
// coloured by outcome; the violation, if any — followed by the options, statistics,
// anomalies, node errors and the last events before the end.
import type { NodeEvent } from './cluster.js';
import type { Op } from './history.js';
import { describeOptions } from './options.js';
import type { SimResult } from './simulate.js';
import type { RoleChange } from './timeline.js';

const LANE_LABEL_PX = 90;
const MIN_WIDTH_PX = 1200;
const PX_PER_SECOND = 40;
const MAX_WIDTH_PX = 6000;
const ROW_PX = 12;
const PARTITION_ROW_PX = 4;

const COLORS = {
  up: '#d9f2d9',
  starting: '#fff3bf',
  paused: '#ffd8a8',
  down: '#e9ecef',
  leader: '#1c4f9c',
  candidate: '#f08c00',
  follower: '#a5c8f0',
  ok: '#2b8a3e',
  fail: '#c92a2a',
  unknown: '#f59f00',
  pending: '#868e96',
  fault: '#e599f7',
  crash: '#c92a2a',
  violation: '#e03131',
} as const;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Span {
  from: number;
  to: number;
  kind: string;
}

/** Renders `r` (run with keepDetails) as an HTML page. */
export function renderReport(r: SimResult): string {
  const d = r.details;
  if (d === undefined) throw new Error('renderReport needs a result of simulate({ keepDetails: true })');
  const endUs = Math.max(r.stats.simulatedMs * 1000, 1);
  const width = Math.min(MAX_WIDTH_PX, Math.max(MIN_WIDTH_PX, Math.ceil((endUs / 1e6) * PX_PER_SECOND)));
  const x = (us: number) =>
    LANE_LABEL_PX + (Math.max(0, Math.min(us, endUs)) / endUs) * (width - LANE_LABEL_PX - 10);
  const parts: string[] = [];
  let y = 24;

  // Time axis.
  const seconds = endUs / 1e6;
  const step = seconds <= 20 ? 1 : seconds <= 60 ? 5 : seconds <= 300 ? 10 : 60;
  const axis: string[] = [];
  for (let s = 0; s <= seconds; s += step) {
    axis.push(
      `<line x1="${x(s * 1e6)}" y1="18" x2="${x(s * 1e6)}" y2="100%" stroke="#dee2e6" stroke-width="1"/>`,
      `<text x="${x(s * 1e6)}" y="12" font-size="10" text-anchor="middle" fill="#495057">${s}s</text>`,
    );
  }

  // Faults lane.
  const faultRows: { end: number }[] = [];
  const faultEls: string[] = [];
  for (const f of d.timeline.faults) {
    const end = f.endUs < 0 ? endUs : f.endUs;
    let row = faultRows.findIndex((fr) => fr.end <= f.startUs);
    if (row < 0) {
      row = faultRows.length;
      faultRows.push({ end });
    } else faultRows[row]!.end = end;
    const fy = y + row * ROW_PX;
    const w = Math.max(2, x(end) - x(f.startUs));
    faultEls.push(
      `<rect x="${x(f.startUs)}" y="${fy}" width="${w}" height="${ROW_PX - 2}" fill="${COLORS.fault}" rx="2"><title>${esc(`${f.kind}: ${f.detail} (${(f.startUs / 1e6).toFixed(3)}s – ${(end / 1e6).toFixed(3)}s)`)}</title></rect>`,
      w > 60
        ? `<text x="${x(f.startUs) + 3}" y="${fy + ROW_PX - 4}" font-size="8" fill="#212529" clip-path="inset(0)">${esc(`${f.kind} ${f.detail}`.slice(0, Math.floor(w / 5)))}</text>`
        : '',
    );
  }
  const faultLaneH = Math.max(1, faultRows.length) * ROW_PX + 6;
  parts.push(
    `<text x="4" y="${y + 10}" font-size="11" font-weight="bold">faults</text>`,
    `<rect x="${LANE_LABEL_PX}" y="${y - 2}" width="${width - LANE_LABEL_PX}" height="${faultLaneH}" fill="#f8f0fc" opacity="0.5"/>`,
    ...faultEls,
  );
  y += faultLaneH + 8;

  // Node lanes.
  const groups = [...new Set(d.timeline.roles.map((c) => c.group))].sort((a, b) => a - b);
  const partitionGroups = groups.filter((g) => g !== 0);
  for (const node of d.nodes) {
    const laneTop = y;
    const procSpans = processSpans(
      d.nodeEvents.filter((e) => e.node === node),
      endUs,
    );
    parts.push(`<text x="4" y="${y + 10}" font-size="11" font-weight="bold">node ${node}</text>`);
    for (const s of procSpans) {
      parts.push(
        `<rect x="${x(s.from)}" y="${y}" width="${Math.max(1, x(s.to) - x(s.from))}" height="${ROW_PX - 2}" fill="${COLORS[s.kind as keyof typeof COLORS] ?? COLORS.down}"><title>${esc(`node ${node} ${s.kind} ${(s.from / 1e6).toFixed(3)}s – ${(s.to / 1e6).toFixed(3)}s`)}</title></rect>`,
      );
    }
    y += ROW_PX;
    parts.push(
      `<text x="${LANE_LABEL_PX - 4}" y="${y + 9}" font-size="9" text-anchor="end" fill="#495057">metadata</text>`,
    );
    parts.push(...roleRects(d.timeline.roles, node, 0, y, ROW_PX - 2, endUs, x, true));
    y += ROW_PX;
    if (partitionGroups.length > 0) {
      // One thin row per partition group; together at least as tall as their label.
      const rowPx = Math.max(PARTITION_ROW_PX, Math.ceil(ROW_PX / partitionGroups.length));
      parts.push(
        `<text x="${LANE_LABEL_PX - 4}" y="${y + 9}" font-size="9" text-anchor="end" fill="#495057">partitions</text>`,
      );
      for (const g of partitionGroups) {
        parts.push(...roleRects(d.timeline.roles, node, g, y, rowPx - 1, endUs, x, false));
        y += rowPx;
      }
    }
    // Crashes, power losses, wipes, fatals: marks across the lane.
    for (const e of d.nodeEvents) {
      if (e.node !== node) continue;
      if (
        e.what === 'crash' ||
        e.what === 'power-loss' ||
        e.what === 'wipe' ||
        e.what === 'fatal' ||
        e.what === 'start-failed'
      ) {
        const symbol =
          e.what === 'crash' ? '✕' : e.what === 'power-loss' ? '⚡' : e.what === 'wipe' ? '∅' : '!';
        parts.push(
          `<line x1="${x(e.atUs)}" y1="${laneTop}" x2="${x(e.atUs)}" y2="${y}" stroke="${COLORS.crash}" stroke-width="1.5"/>`,
          `<text x="${x(e.atUs) + 2}" y="${laneTop + 9}" font-size="10" fill="${COLORS.crash}"><title>${esc(`${e.what} ${e.detail} at ${(e.atUs / 1e6).toFixed(3)}s`)}</title>${symbol}</text>`,
        );
      }
    }
    parts.push(`<line x1="0" y1="${y + 3}" x2="${width}" y2="${y + 3}" stroke="#ced4da"/>`);
    y += 8;
  }

  // Client lanes.
  const clients = [...new Set(d.history.ops.map((o) => o.client))].sort((a, b) => a - b);
  for (const c of clients) {
    const ops = d.history.ops.filter((o) => o.client === c);
    parts.push(
      `<text x="4" y="${y + 9}" font-size="11" font-weight="bold">${c === 0 ? 'operator' : `client ${c}`}</text>`,
    );
    for (const op of ops) parts.push(opRect(op, y, endUs, x));
    y += ROW_PX + 4;
  }

  // The violation.
  if (r.violation !== undefined) {
    const vx = x(r.violation.atUs);
    parts.push(
      `<line x1="${vx}" y1="18" x2="${vx}" y2="${y}" stroke="${COLORS.violation}" stroke-width="2" stroke-dasharray="4 2"/>`,
      `<text x="${vx - 4}" y="${y + 12}" font-size="11" text-anchor="end" fill="${COLORS.violation}" font-weight="bold">${esc(r.violation.property)}</text>`,
    );
    y += 16;
  }
  const height = y + 10;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="system-ui, sans-serif">${axis.join('')}${parts.join('')}</svg>`;

  const legend = [
    ['up', COLORS.up],
    ['starting', COLORS.starting],
    ['paused', COLORS.paused],
    ['down', COLORS.down],
    ['leader', COLORS.leader],
    ['candidate', COLORS.candidate],
    ['follower', COLORS.follower],
    ['op ok', COLORS.ok],
    ['op failed', COLORS.fail],
    ['op unknown', COLORS.unknown],
    ['fault', COLORS.fault],
  ]
    .map(([name, color]) => `<span class="key"><i style="background:${color}"></i>${name}</span>`)
    .join('');
  const status = r.passed
    ? `<p class="pass">PASSED</p>`
    : `<p class="fail">FAILED: ${esc(r.violation!.property)} at ${(r.violation!.atUs / 1e6).toFixed(6)}s</p><pre>${esc(r.violation!.message)}</pre>`;
  const stats = r.stats;
  const statRows: [string, string][] = [
    ['simulated time', `${(stats.simulatedMs / 1000).toFixed(1)} s`],
    [
      'wall time',
      `${(stats.wallMs / 1000).toFixed(2)} s (${stats.simulatedSecondsPerWallSecond.toFixed(1)} simulated s per s)`,
    ],
    ['events', `${stats.events} (${Math.round(stats.eventsPerWallSecond)} per s)`],
    [
      'operations',
      Object.entries(stats.operations)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    [
      'frames',
      `${stats.network.framesSent} sent, ${stats.network.framesDelivered} delivered, ${stats.network.framesLost} lost, ${stats.network.framesCut} cut, ${stats.network.framesDuplicated} duplicated`,
    ],
    ['leaders seen', String(stats.leadersSeen)],
    ['entries applied', String(stats.entriesApplied)],
    ['faults struck', String(stats.faultsStruck)],
    [
      'process starts',
      `${stats.processStarts} (${stats.fatals} fatal, ${stats.startFailures} failed to start)`,
    ],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cairn sim — seed ${r.seed}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 16px; color: #212529; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
.pass { color: ${COLORS.ok}; font-weight: bold; } .fail { color: ${COLORS.violation}; font-weight: bold; }
pre { background: #f1f3f5; padding: 8px; overflow-x: auto; font-size: 12px; }
.timeline { overflow-x: auto; border: 1px solid #dee2e6; }
.key { margin-right: 12px; font-size: 12px; white-space: nowrap; }
.key i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
table { border-collapse: collapse; font-size: 13px; } td { padding: 2px 12px 2px 0; vertical-align: top; }
</style></head><body>
<h1>cairn sim — seed ${r.seed}</h1>
${status}
<p>trace hash <code>${r.traceHash}</code> · reproduce with <code>cairn sim --seed ${r.seed} --time ${r.options.timeMs / 1000}s --nodes ${r.options.nodes} --faults ${r.options.faults.join(',') || 'none'}</code></p>
<h2>Timeline</h2>
<div>${legend}</div>
<div class="timeline">${svg}</div>
<p style="font-size:12px;color:#495057">Per node: the process (✕ crash, ⚡ power loss, ∅ wiped disk, ! fatal), its role in the metadata group, and one thin row per partition group. Hover for details.</p>
${r.anomalies.length > 0 ? `<h2>Anomalies</h2><pre>${esc(r.anomalies.map((a) => `${a.property}: ${a.message}`).join('\n'))}</pre>` : ''}
<h2>Options</h2><pre>${esc(describeOptions(r.options).join('\n'))}</pre>
<h2>Statistics</h2><table>${statRows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
${r.warnings.length > 0 ? `<h2>Warnings</h2><pre>${esc(r.warnings.join('\n'))}</pre>` : ''}
${r.violation !== undefined ? `<h2>Last events before the violation</h2><pre>${esc(r.violation.lastEvents.join('\n'))}</pre>` : ''}
</body></html>
`;
}

/** The node's processes as spans: starting → up (paused inside) → down. */
function processSpans(events: NodeEvent[], endUs: number): Span[] {
  const spans: Span[] = [];
  let state = 'down';
  let since = 0;
  const to = (next: string, at: number) => {
    if (at > since || state !== next) spans.push({ from: since, to: at, kind: state });
    state = next;
    since = at;
  };
  for (const e of events) {
    switch (e.what) {
      case 'start':
        to('starting', e.atUs);
        break;
      case 'up':
        to('up', e.atUs);
        break;
      case 'pause':
        to('paused', e.atUs);
        break;
      case 'resume':
        to('up', e.atUs);
        break;
      case 'crash':
      case 'power-loss':
      case 'fatal':
      case 'start-failed':
      case 'wipe':
        to('down', e.atUs);
        break;
    }
  }
  spans.push({ from: since, to: endUs, kind: state });
  return spans.filter((s) => s.to > s.from);
}

function roleRects(
  roles: RoleChange[],
  node: number,
  group: number,
  y: number,
  h: number,
  endUs: number,
  x: (us: number) => number,
  labelTerms: boolean,
): string[] {
  const out: string[] = [];
  const mine = roles.filter((c) => c.node === node && c.group === group);
  for (let i = 0; i < mine.length; i++) {
    const c = mine[i]!;
    if (c.role === 'down') continue;
    const end = mine[i + 1]?.atUs ?? endUs;
    const color =
      c.role === 'leader' ? COLORS.leader : c.role === 'follower' ? COLORS.follower : COLORS.candidate;
    const w = Math.max(1, x(end) - x(c.atUs));
    out.push(
      `<rect x="${x(c.atUs)}" y="${y}" width="${w}" height="${h}" fill="${color}"><title>${esc(`node ${node} group ${group}: ${c.role} in term ${c.term} from ${(c.atUs / 1e6).toFixed(3)}s`)}</title></rect>`,
    );
    if (labelTerms && c.role === 'leader' && w > 14)
      out.push(`<text x="${x(c.atUs) + 2}" y="${y + h - 2}" font-size="8" fill="#fff">t${c.term}</text>`);
  }
  return out;
}

function opRect(op: Op, y: number, endUs: number, x: (us: number) => number): string {
  const end = op.completeUs < 0 ? endUs : op.completeUs;
  const color = COLORS[op.outcome];
  const h = op.kind === 'poll' ? 4 : ROW_PX - 2;
  const top = op.kind === 'poll' ? y + ROW_PX - 5 : y;
  const what =
    op.kind === 'poll'
      ? `poll ${op.stream}/${op.partition} from ${op.from}${op.records ? `: ${op.records.length} records` : ''}`
      : op.kind === 'admin'
        ? `admin: ${op.what}`
        : `${op.kind} ${op.stream}/${op.partition}${op.offset !== undefined ? ` at ${op.offset}` : ''}${op.expectedOffset !== undefined ? ` expecting ${op.expectedOffset}` : ''}`;
  const title = `${what} on node ${op.node}: ${op.outcome}${op.error ? ` (${op.error})` : ''} ${(op.invokeUs / 1e6).toFixed(3)}s – ${(end / 1e6).toFixed(3)}s`;
  return `<rect x="${x(op.invokeUs)}" y="${top}" width="${Math.max(1.5, x(end) - x(op.invokeUs))}" height="${h}" fill="${color}" opacity="0.8"><title>${esc(title)}</title></rect>`;
}
