// The nodes' logs in a run: warnings and errors are kept (with the virtual time and the
// node), everything below is dropped. pino writes to a plain object here (no file, no
// timestamps from the real clock), so logging stays deterministic.
import { pino } from 'pino';
import type { Logger } from '../../node/src/ops/log.js';

export interface LogLine {
  atUs: number;
  node: number;
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  err: string;
}

/** Lines kept at most (the first ones: later ones are usually consequences). */
const MAX_LOG_LINES = 500;

const levelName: Record<number, LogLine['level']> = { 40: 'warn', 50: 'error', 60: 'fatal' };

export class NodeLogs {
  readonly lines: LogLine[] = [];
  dropped = 0;
  private readonly root: Logger;

  constructor(private readonly now: () => number) {
    this.root = pino(
      { level: 'warn', timestamp: false, base: null },
      {
        write: (s: string) => {
          if (this.lines.length >= MAX_LOG_LINES) {
            this.dropped++;
            return;
          }
          const o = JSON.parse(s) as {
            level: number;
            node?: number;
            msg?: string;
            err?: { message?: string };
          };
          this.lines.push({
            atUs: this.now(),
            node: o.node ?? 0,
            level: levelName[o.level] ?? 'warn',
            msg: o.msg ?? '',
            err: o.err?.message ?? '',
          });
        },
      },
    );
  }

  /** The logger of one node's processes. */
  forNode(node: number): Logger {
    return this.root.child({ node });
  }
}
