// Small helpers for the benchmarks: run a process and time it, read its peak RSS, summarise samples.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Timed {
  ms: number;
  /** CPU time (user + system) of the process, ms; NaN without GNU time. */
  cpuMs: number;
  /** Peak RSS in bytes; NaN without GNU time. */
  rss: number;
  stdout: string;
  stderr: string;
}

const GNU_TIME = '/usr/bin/time';
const MARK = 'stowage-bench-rusage';

export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/**
 * Runs a command to completion (under GNU time when present, for its CPU time and peak RSS) and
 * returns its wall time, spawn → exit. Rejects on a non-zero exit.
 */
export function timeProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Timed> {
  const wrapped = haveGnuTime();
  const argv = wrapped ? ['-f', `${MARK} %U %S %M`, cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(wrapped ? GNU_TIME : cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - began;
      const stdout = Buffer.concat(out).toString('utf8');
      let stderr = Buffer.concat(err).toString('utf8');
      let cpuMs = Number.NaN;
      let rss = Number.NaN;
      const m = new RegExp(`(?:^|\\n)${MARK} ([\\d.]+) ([\\d.]+) (\\d+)\\n?$`).exec(stderr);
      if (m) {
        cpuMs = (Number(m[1]) + Number(m[2])) * 1000;
        rss = Number(m[3]) * 1024;
        stderr = stderr.slice(0, m.index);
      }
      if (code === 0) resolve({ ms, cpuMs, rss, stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}:\n${stderr || stdout}`));
    });
  });
}

export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await fn();
  return performance.now() - began;
}

/** Peak RSS (bytes) of a command, from GNU time, and its wall time. */
export async function peakRss(
  cmd: string,
  args: string[],
): Promise<{ bytes: number; ms: number; stdout: string }> {
  const r = await timeProcess(cmd, args);
  if (Number.isNaN(r.rss)) throw new Error(`no peak RSS: ${GNU_TIME} is missing (apt-get install -y time)`);
  return { bytes: r.rss, ms: r.ms, stdout: r.stdout };
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarise(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
