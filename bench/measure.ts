// Small helpers for the benchmarks: run a process and time it, read its peak RSS, summarise samples.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Timed {
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its wall time (spawn → exit); rejects on a non-zero exit. */
export function timeProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - began;
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ ms, stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}:\n${stderr || stdout}`));
    });
  });
}

export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await fn();
  return performance.now() - began;
}

const GNU_TIME = '/usr/bin/time';

export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** Peak RSS (bytes) of a command, from GNU time's "Maximum resident set size", and its wall time. */
export async function peakRss(
  cmd: string,
  args: string[],
): Promise<{ bytes: number; ms: number; stdout: string }> {
  const r = await timeProcess(GNU_TIME, ['-v', cmd, ...args]);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no "Maximum resident set size" in the output of ${GNU_TIME} -v ${cmd}`);
  return { bytes: Number(m[1]) * 1024, ms: r.ms, stdout: r.stdout };
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
