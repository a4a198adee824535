// What the report draws: role changes per node and group, faults as intervals, and the
// client operations (from the History). Only changes are recorded, so it stays small.
import type { Op } from './history.js';

export interface RoleChange {
  atUs: number;
  node: number;
  group: number;
  role: string;
  term: number;
}

/** A group's membership as its leader saw it, when it changed. */
export interface ConfChange {
  atUs: number;
  group: number;
  leader: number;
  voters: number[];
  learners: number[];
}

export interface FaultSpan {
  startUs: number;
  /** -1 while it lasts. */
  endUs: number;
  kind: string;
  detail: string;
  nodes: number[];
}

const roleCode: Record<string, number> = { follower: 1, candidate: 2, preCandidate: 3, leader: 4 };

export class Timeline {
  readonly roles: RoleChange[] = [];
  readonly faults: FaultSpan[] = [];
  readonly confs: ConfChange[] = [];
  private readonly lastConf = new Map<number, string>();
  readonly opsDone: Op[] = [];
  /** (node, group) → last role code × 2^32 + term. */
  private readonly last = new Map<number, number>();

  constructor(private readonly now: () => number) {}

  role(node: number, group: number, role: string, term: number): void {
    const key = node * 1_000_000 + group;
    const code = (roleCode[role] ?? 0) * 0x1_0000_0000 + term;
    if (this.last.get(key) === code) return;
    this.last.set(key, code);
    this.roles.push({ atUs: this.now(), node, group, role, term });
  }

  conf(group: number, leader: number, voters: number[], learners: number[]): void {
    const key = `${voters.join(',')}|${learners.join(',')}`;
    if (this.lastConf.get(group) === key) return;
    this.lastConf.set(group, key);
    this.confs.push({ atUs: this.now(), group, leader, voters: [...voters], learners: [...learners] });
  }

  /** The node's process is gone: its roles end. */
  down(node: number): void {
    for (const key of this.last.keys()) {
      if (Math.floor(key / 1_000_000) === node) {
        this.roles.push({ atUs: this.now(), node, group: key % 1_000_000, role: 'down', term: 0 });
        this.last.delete(key);
      }
    }
  }

  faultStart(kind: string, detail: string, nodes: number[]): FaultSpan {
    const f: FaultSpan = { startUs: this.now(), endUs: -1, kind, detail, nodes };
    this.faults.push(f);
    return f;
  }

  faultEnd(f: FaultSpan): void {
    if (f.endUs < 0) f.endUs = this.now();
  }

  op(op: Op): void {
    this.opsDone.push(op);
  }
}
