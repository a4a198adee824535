// Structured logs (pino, JSON lines on stderr so stdout stays free for CLI output).
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything (unit tests, the simulator). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
