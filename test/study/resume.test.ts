import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture, type StudyFixture } from "./fixture.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
/** Files that record timings (wall clock) and so differ between any two runs. */
const TIMED = new Set(["step.json", "training_log.json", "merge_manifest.json"]);

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function runCli(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("kill -9 at a random moment, then resume", () => {
  const tmp = tempDir("merglot-study-kill-");
  let fx: StudyFixture;
  before(() => {
    fx = makeStudyFixture(tmp.dir);
  });
  after(() => tmp.cleanup());

  test("the resumed run's outputs equal an uninterrupted run's, byte for byte", async () => {
    const ref = join(tmp.dir, "ref");
    const t0 = Date.now();
    const r = runCli(["study", "run", fx.studyPath, "-o", ref]);
    assert.equal(r.status, 0, r.stderr);
    const refMs = Date.now() - t0;

    // Kill a real run at a random moment of its expected duration (printed so a failure can be replayed).
    const out = join(tmp.dir, "killed");
    const delay = Math.floor(refMs * (0.15 + 0.7 * Math.random()));
    const child = spawn(process.execPath, [CLI, "study", "run", fx.studyPath, "-o", out], {
      stdio: "ignore",
    });
    await new Promise((res) => setTimeout(res, delay));
    child.kill("SIGKILL");
    await new Promise((res) => child.once("exit", res));
    const steps = join(out, "steps");
    // Whatever was killed when, every folder under its final name is a complete step.
    if (existsSync(steps))
      for (const key of readdirSync(steps).filter((n) => !n.startsWith("."))) {
        assert.ok(
          existsSync(join(steps, key, "step.json")),
          `killed after ${delay} ms: ${key} has no record`,
        );
        const record = JSON.parse(readFileSync(join(steps, key, "step.json"), "utf8")) as { kind: string };
        if (record.kind === "train" || record.kind === "merge")
          assert.ok(existsSync(join(steps, key, "adapter", "adapter_model.safetensors")));
        if (record.kind === "evaluate") assert.ok(existsSync(join(steps, key, "metrics.json")));
      }

    // Resume with parallel jobs: outputs must not depend on the schedule either.
    // (and with a relative output path: every path a step hands on must still resolve)
    const resumed = runCli(["study", "run", "study.yaml", "-o", "killed", "--jobs", "2", "--json"], tmp.dir);
    assert.equal(resumed.status, 0, `killed after ${delay} ms: ${resumed.stderr}`);
    assert.deepEqual(
      readdirSync(steps).filter((n) => n.startsWith(".")),
      [],
      "temp folders left behind",
    );
    assert.deepEqual(
      readdirSync(out).filter((n) => n.includes(".tmp-")),
      [],
      "temp files of the lock or results left behind",
    );
    const refFiles = files(join(ref, "steps"));
    assert.deepEqual(files(steps), refFiles);
    for (const f of refFiles) {
      if (TIMED.has(f.split("/").at(-1)!)) continue;
      assert.ok(
        readFileSync(join(ref, "steps", f)).equals(readFileSync(join(steps, f))),
        `killed after ${delay} ms: ${f} differs from the uninterrupted run`,
      );
    }
    const a = JSON.parse(readFileSync(join(ref, "results.json"), "utf8"));
    const b = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.deepEqual(b.results, a.results);
    const lock = JSON.parse(readFileSync(join(out, "study.lock.json"), "utf8"));
    assert.ok(Object.values(lock.steps).every((s) => (s as { status: string }).status === "done"));
    const st = runCli(["study", "status", out, "--json"]);
    assert.equal(st.status, 0);
    const status = JSON.parse(st.stdout);
    assert.equal(status.counts.done, Object.keys(lock.steps).length);
    assert.equal(status.counts["to do"] + status.counts.interrupted + status.counts.failed, 0);

    // every step records the merglot that computed it; status names the steps another version computed
    const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
    assert.ok((status.steps as { merglot: string }[]).every((s) => s.merglot === version));
    assert.deepEqual(status.otherVersions, {});
    const [a1, a2, a3] = Object.values(lock.steps as Record<string, { key: string }>).map((e) => e.key);
    const restamp = (key: string, v: string | undefined) => {
      const p = join(steps, key, "step.json");
      const r = JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>;
      if (v === undefined) delete r.merglot;
      else r.merglot = v;
      writeFileSync(p, JSON.stringify(r));
    };
    restamp(a1!, "0.0.9");
    restamp(a2!, "0.0.9");
    restamp(a3!, undefined);
    const again = JSON.parse(runCli(["study", "status", out, "--json"]).stdout);
    assert.deepEqual(again.otherVersions, { "0.0.9": 2, unrecorded: 1 });
    const text = runCli(["study", "status", out]).stdout;
    assert.match(
      text,
      /^note: 3 finished steps come from other merglot versions than this one \([^)]*\): 0\.0\.9 ×2, unrecorded ×1 \(unrecorded: records older/m,
    );
    assert.equal(text.split("\n").filter((l) => l.includes(`[merglot 0.0.9: steps/`)).length, 2);
    assert.ok(text.includes(`[merglot unrecorded: steps/${a3}]`));
    // and a run reuses them as they are
    const plan = runCli(["study", "run", fx.studyPath, "-o", out, "--dry-run"]).stdout;
    assert.match(plan, /^plan: (\d+) steps, \1 cached, 0 to run/m);
  });
});
