// What one durable write costs on the disk the benchmarks run on, measured in the same run
// as the systems: the floor under every acknowledged-after-fsync number.
//
//   append, O_DSYNC        each write extends the file (as Cairn's segments grow): the
//                          file size changes, so the filesystem also commits metadata
//   overwrite, O_DSYNC     the same writes into a file already written to its full size
//                          (as etcd's preallocated WAL files): data only
//   append + fdatasync     write, then fdatasync (two trips to the thread pool)
//   append 1 MiB, O_DSYNC  large durable appends, as a re-sync or a saturating leader
//                          writes them: the disk's durable write bandwidth
//
// Writes are sequential, one at a time.
import { closeSync, constants, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Latencies, type LatencySummary } from './histogram.js';
import type { Processes } from './procs.js';

/** The probe the cluster and peers suites run before starting servers: 200 durable 4 KiB writes per mode, and 48 of 1 MiB. */
export const DISK_PROBE = { writes: 200, writeBytes: 4096, largeWrites: 48, largeWriteBytes: 2 ** 20 };

export interface DiskProbe {
  mode: string;
  writes: number;
  writeBytes: number;
  latency: LatencySummary;
}

export function probeDisk(procs: Processes, o: typeof DISK_PROBE): DiskProbe[] {
  const dir = procs.tempDir('disk-probe');
  const run = (
    mode: string,
    file: string,
    flags: number,
    prefill: boolean,
    datasync: boolean,
    w = { writes: o.writes, writeBytes: o.writeBytes },
  ) => {
    const buf = new Uint8Array(w.writeBytes).fill(0xa5);
    const path = join(dir, file);
    if (prefill) {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT);
      // Written (not just sized), and synced: a sparse or unwritten extent would still need metadata.
      const chunk = new Uint8Array(1 << 20);
      for (let at = 0; at < o.writes * o.writeBytes; at += chunk.length)
        writeSync(fd, chunk, 0, chunk.length, at);
      fdatasyncSync(fd);
      closeSync(fd);
    }
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | flags);
    const lat = new Latencies();
    try {
      for (let i = 0; i < w.writes; i++) {
        const t = performance.now();
        writeSync(fd, buf, 0, buf.length, i * w.writeBytes);
        if (datasync) fdatasyncSync(fd);
        lat.record(performance.now() - t);
      }
    } finally {
      closeSync(fd);
    }
    return { mode, writes: w.writes, writeBytes: w.writeBytes, latency: lat.summary() };
  };
  return [
    run('append, O_DSYNC', 'append-dsync', constants.O_DSYNC, false, false),
    run('overwrite preallocated, O_DSYNC', 'overwrite-dsync', constants.O_DSYNC, true, false),
    run('append + fdatasync', 'append-fdatasync', 0, false, true),
    run('append 1 MiB, O_DSYNC', 'append-large-dsync', constants.O_DSYNC, false, false, {
      writes: o.largeWrites,
      writeBytes: o.largeWriteBytes,
    }),
  ];
}
