// Shared by the fuzz tests: a property that calls `fn` must either return or throw a
// StowageError, and must not take longer than a generous bound (a guard against super-linear
// parsing, e.g. catastrophic regex backtracking; normal calls take microseconds).
import assert from 'node:assert/strict';
import { StowageError } from '../../src/core/errors';

/** Per call; inputs stay under ~300 KB (or 2,000 Dockerfile lines), so only a super-linear blow-up can exceed it. */
export const CALL_BOUND_MS = 3_000;
/** Seeded, so a failure reproduces; FUZZ_RUNS raises the count for a longer local hunt. */
export const fuzzOptions = { seed: 20_261_125, numRuns: Number(process.env.FUZZ_RUNS ?? 400) };

/** Runs fn; returns its value, or undefined when it threw a StowageError. Anything else fails. */
export function onlyTyped<T>(fn: () => T, what: string): T | undefined {
  const began = performance.now();
  let out: T | undefined;
  try {
    out = fn();
  } catch (e) {
    if (!(e instanceof StowageError)) {
      assert.fail(
        `${what} threw a ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message ?? e}`,
      );
    }
  }
  const ms = performance.now() - began;
  assert.ok(ms < CALL_BOUND_MS, `${what} took ${ms.toFixed(0)} ms`);
  return out;
}

/** Long pathological inputs built from repeated pieces (the classic regex-backtracking shapes). */
export function pathological(
  pieces: string[],
  tails: string[] = ['', '!', ' ', '\u0000', '"', '='],
): string[] {
  const out: string[] = [];
  for (const p of pieces) for (const t of tails) out.push(`${p.repeat(Math.ceil(60_000 / p.length))}${t}`);
  return out;
}
