/**
 * Worker-thread failures end cleanly: a NaN in a middle layer of one of five adapters merged on two worker
 * threads (native GEMM), and a disk that fills up while workers write. Before the fix, about one run in
 * three aborted with `terminate called after throwing an instance of 'Napi::Error'` (exit 134): the main
 * thread terminated a worker while it was inside onnxruntime. Each case is therefore run many times.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { MerglotError } from "../../src/errors.js";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import {
  assertOneLineError,
  layeredModules,
  makeAdapterWith,
  runCli,
  tempsIn,
} from "../helpers/merge-faults.js";

const tmp = tempDir("merglot-faults-workers-");
after(() => tmp.cleanup());

// 6 layers × 2 modules of 192 × 192 at rank 8: B·A is 192·192·8 multiply-adds, well above the size that
// goes to onnxruntime, so workers are inside native code most of the time.
const MODULES = layeredModules(6, 192, 8);
for (let i = 0; i < 5; i++) {
  const dir = join(tmp.dir, `a${i}`);
  if (i === 2) makeAdapterWith(dir, 10 + i, MODULES, { module: 6, factor: "a", index: 5, value: NaN });
  else makeAdapter(dir, { seed: 10 + i, modules: MODULES });
}
const models = (n: number, skip = -1) =>
  Array.from({ length: n }, (_, i) => i)
    .filter((i) => i !== skip)
    .map((i) => `  - model: a${i}\n`)
    .join("");
const nanRecipe = writeRecipe(
  tmp.dir,
  "nan.yaml",
  `merge_method: ties\nparameters: {density: 0.5}\nmodels:\n${models(5)}`,
);

test("a NaN in a middle layer, 2 worker threads: 20 runs, each exit 1 with the adapter's message and no temp", () => {
  const inputBefore = readFileSync(join(tmp.dir, "a2", "adapter_model.safetensors"));
  for (let run = 0; run < 20; run++) {
    const r = runCli(["merge", nanRecipe, "-o", "out", "--threads", "2"], { cwd: tmp.dir });
    assert.notEqual(r.status, 134, `run ${run}: native abort\n${r.stderr}`);
    assertOneLineError(
      r,
      /a2: tensor "base_model\.model\.model\.layers\.3\.self_attn\.q_proj\.lora_A\.weight" contains NaN at index 5$/,
    );
    assert.equal(existsSync(join(tmp.dir, "out")), false, `run ${run}: nothing at the output path`);
    assert.deepEqual(tempsIn(tmp.dir), [], `run ${run}: no temp left`);
  }
  assert.deepEqual(readFileSync(join(tmp.dir, "a2", "adapter_model.safetensors")), inputBefore);
});

test("disk full while 2 workers write: 6 runs, each exit 1 naming the output, nothing left on the disk", (t) => {
  const mnt = join(tmp.dir, "small-disk");
  mkdirSync(mnt);
  // 64 KiB: the header fits, the 12 modules' factors (147 KB in float32) do not.
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    t.skip(`cannot mount a small tmpfs here (needs root): ${m.stderr.trim() || m.error?.message}`);
    return;
  }
  try {
    const recipe = writeRecipe(
      tmp.dir,
      "ok.yaml",
      `merge_method: ties\nparameters: {density: 0.5}\nmodels:\n${models(5, 2)}`,
    );
    for (let run = 0; run < 6; run++) {
      const out = join(mnt, "merged");
      const r = runCli(["merge", recipe, "-o", out, "--threads", "2"], { cwd: tmp.dir });
      assert.notEqual(r.status, 134, `run ${run}: native abort\n${r.stderr}`);
      // the up-front free-space check usually refuses before the workers start; either way one line
      assertOneLineError(r, new RegExp(`${out}: (cannot write the output: )?no space left on device`));
      assert.deepEqual(readdirSync(mnt), [], `run ${run}: nothing left on the full disk`);
    }
  } finally {
    spawnSync("umount", [mnt]);
  }
});

test("an abort signal (what a SIGINT handler raises) stops a 2-thread merge cleanly, 6 times in process", async () => {
  const recipe = writeRecipe(
    tmp.dir,
    "ok-abort.yaml",
    `merge_method: ties\nparameters: {density: 0.5}\nmodels:\n${models(5, 2)}`,
  );
  for (let run = 0; run < 6; run++) {
    const out = join(tmp.dir, "aborted");
    const stop = new AbortController();
    let progressed = 0;
    await assert.rejects(
      merge(recipe, {
        output: out,
        threads: 2,
        signal: stop.signal,
        onProgress: () => {
          if (++progressed === 1) stop.abort();
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof MerglotError, String(e));
        assert.equal(e.code, "merge.interrupted");
        return true;
      },
    );
    assert.ok(progressed < MODULES.length, "stopped before the end");
    assert.equal(existsSync(out), false, `run ${run}: nothing at the output path`);
    assert.deepEqual(tempsIn(tmp.dir), [], `run ${run}: no temp left`);
  }
});
