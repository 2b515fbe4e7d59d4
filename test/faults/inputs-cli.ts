/**
 * Hostile-input fault tests: run the real CLI in a child process and check what a user would see. Shared by
 * the test/faults/inputs-*.test.ts files.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const CLI = join(process.cwd(), "dist/src/cli/main.js");

/**
 * Characters that must never reach a terminal raw: C0 controls except the newline, DEL, C1 controls, bidi
 * controls and the line/paragraph separators (the set src/escape.ts escapes).
 */
export const RAW_CONTROL =
  // eslint-disable-next-line no-control-regex -- finding raw control characters is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * Run `merglot ARGS` in `cwd`. The timeout is a guard against a hang (the old pattern matching took minutes on
 * these inputs), not a timing assertion: every case here finishes in well under a second when correct.
 */
export function runCli(cwd: string, ...args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.error, undefined, `merglot ${args.join(" ")} did not finish: ${String(r.error)}`);
  return r;
}

/** The run failed the way bad input must: exit 1, nothing on stdout, one `merglot: …` line matching `pattern`,
 *  no raw control characters, no stack trace, no "internal error". */
export function assertOneClearLine(r: SpawnSyncReturns<string>, pattern: RegExp): void {
  const where = `stderr: ${JSON.stringify(r.stderr)}`;
  assert.equal(r.status, 1, where);
  assert.equal(r.stdout, "", `stdout: ${JSON.stringify(r.stdout)}`);
  assert.match(r.stderr, /^merglot: [^\n]*\n$/, where);
  assert.doesNotMatch(r.stderr, RAW_CONTROL, where);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, where);
  assert.match(r.stderr, pattern, where);
}

/** Every entry under `dir` (relative paths, sorted): to check that a failed run wrote nothing. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      out.push(join(rel, e.name));
      if (e.isDirectory()) walk(join(d, e.name), join(rel, e.name));
    }
  };
  walk(dir, "");
  return out;
}
