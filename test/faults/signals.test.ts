/**
 * Debris and signals, with real signals sent to real `merglot merge` processes caught mid-run:
 * SIGINT / SIGTERM / SIGHUP remove the run's temp paths and exit 130 / 143 / 129 with one line; the old
 * output and the inputs stay byte-identical. SIGKILL leaves debris, which the next run beside it sweeps —
 * but never the temp paths of a live process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { debrisPathFor, sweepDebris } from "../../src/output/debris.js";
import { tempDir } from "../helpers/fixtures.js";
import { bigMergeSetup, cli, debris, lines, startCli, treeHash, waitForEntry } from "./helpers.js";

const tmp = tempDir("merglot-signals-");
after(() => tmp.cleanup());
const dir = tmp.dir;
let inputs: Record<string, string>;
let old: Record<string, string>;

before(() => {
  bigMergeSetup(dir);
  inputs = treeHash(join(dir, "a"));
  // an old output, written by a quick merge of one adapter, that interrupted replacements must keep
  writeFileSync(join(dir, "one.yaml"), "merge_method: task_arithmetic\nmodels: [{model: a/en}]\n");
  const r = cli(dir, "merge", "one.yaml", "-o", "out");
  assert.equal(r.code, 0, r.stderr);
  old = treeHash(join(dir, "out"));
});

const CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

describe("SIGINT, SIGTERM and SIGHUP during a merge", () => {
  for (const [signal, code] of Object.entries(CODES) as [NodeJS.Signals, number][]) {
    test(`${signal}: temp removed, exit ${code}, one line, old output and inputs intact`, async () => {
      const run = startCli(dir, "merge", "r.yaml", "-o", "out", "--force", "--threads", "2");
      await waitForEntry(dir, /^\.out\.tmp-/, run);
      run.kill(signal);
      const r = await run.done;
      assert.equal(r.code, code, r.stderr);
      assert.deepEqual(lines(r.stderr), [
        `merglot: interrupted by ${signal}; the unfinished output was removed`,
      ]);
      assert.deepEqual(debris(dir), []);
      assert.deepEqual(treeHash(join(dir, "out")), old, "the old output is byte-identical");
      assert.deepEqual(treeHash(join(dir, "a")), inputs);
    });
  }
});

describe("debris of dead processes", () => {
  test("SIGKILL leaves a temp folder; the next run beside it sweeps it", async () => {
    const run = startCli(dir, "merge", "r.yaml", "-o", "out", "--force", "--threads", "2");
    await waitForEntry(dir, /^\.out\.tmp-/, run);
    run.kill("SIGKILL");
    const r = await run.done;
    assert.equal(r.signal, "SIGKILL");
    const left = debris(dir);
    assert.equal(left.length, 1, "the killed run's temp folder is left");
    assert.match(left[0]!, new RegExp(`^\\.out\\.tmp-${run.pid}-`));
    assert.deepEqual(treeHash(join(dir, "out")), old);
    const next = cli(dir, "merge", "one.yaml", "-o", "other");
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(debris(dir), [], "swept by the next run writing in the same folder");
    assert.deepEqual(treeHash(join(dir, "out")), old);
  });

  test("a live process's temp is never touched; a reused PID (other start time) is stale", () => {
    const sweepDir = join(dir, "sweep");
    mkdirSync(sweepDir);
    // this test process is alive: its own temp name must survive a sweep by the CLI (another process)
    const mine = debrisPathFor(join(sweepDir, "x"), "tmp");
    mkdirSync(mine);
    // the same live PID with another start time: the process that wrote it is gone, the PID was reused
    const reused = join(sweepDir, `.y.tmp-${process.pid}-zzzzzz-0123456789`);
    mkdirSync(reused);
    // a PID that has exited, in the older name form without a start token
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    const gone = join(sweepDir, `.z.tmp-${dead.stdout}-mie3k2a1`);
    writeFileSync(gone, "partial");
    const r = cli(sweepDir, "merge", join(dir, "one.yaml"), "-o", "new");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(mine), "a live process's temp path is kept");
    assert.equal(existsSync(reused), false);
    assert.equal(existsSync(gone), false);
    assert.deepEqual(readdirSync(sweepDir).sort(), [mine.slice(sweepDir.length + 1), "new"].sort());
  });

  test("a dead run that moved the old output to trash but never put the new one in place: it comes back", () => {
    const d = join(dir, "restore");
    mkdirSync(d);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    assert.equal(cli(d, "merge", join(dir, "one.yaml"), "-o", "kept").code, 0);
    const before = treeHash(join(d, "kept"));
    // what a replacement killed between its two renames leaves: the old output under a trash name, the new
    // one under a temp name, nothing at the target
    renameSync(join(d, "kept"), join(d, `.kept.trash-${dead.stdout}-0-abc`));
    mkdirSync(join(d, `.kept.tmp-${dead.stdout}-0-abc`));
    assert.deepEqual(sweepDebris(d).length, 2);
    assert.deepEqual(treeHash(join(d, "kept")), before, "the old output is back, byte-identical");
    assert.deepEqual(debris(d), []);
  });
});
