/**
 * DELLA's magprune kernel (wasm/della.ts) against its JavaScript twin (operators.ts `magprune`): the same bits
 * and the same generator state afterwards, on row lengths around the kernel's loops and radix digits, with
 * repeated magnitudes, zeros of both signs and wide exponents. Then whole merges whose elect + disjoint mean now
 * runs on the SIMD TIES kernel with nothing trimmed (della, breadcrumbs_ties, in the delta, factors and KnOTS
 * spaces): byte-identical to a child process with MERGLOT_WASM=js.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { magpruneFast } from "../../src/merge/della-wasm.js";
import { magprune } from "../../src/merge/operators.js";
import { Rng } from "../../src/tensor/rng.js";
import { wasmInstance, wasmLoadError } from "../../src/tensor/wasm.js";
import { layeredModules } from "../helpers/merge-faults.js";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { magnitudeMix, mulberry32 } from "../helpers/rand.js";

test("the DELLA kernel loads (else the comparisons below would compare JavaScript with itself)", () => {
  assert.notEqual(wasmInstance("della"), null, wasmLoadError("della") ?? "");
});

test("magprune on the kernel: the JavaScript function's bits and generator state", () => {
  const next = mulberry32(5);
  for (const cols of [1, 3, 8, 2049, 4099]) {
    const x = magnitudeMix(next, cols * 5);
    for (const [density, epsilon, rescale] of [
      [0.5, 0.2, true],
      [0.3, 0.1, false],
      [0.9, 0.2, true],
    ] as const) {
      const js = new Rng(77);
      const fast = new Rng(77);
      const want = magprune(x, density, epsilon, cols, js, rescale);
      const got = magpruneFast(x, density, epsilon, cols, fast, rescale);
      const label = `cols ${cols}, ρ ${density}, ε ${epsilon}, rescale ${rescale}`;
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), label);
      assert.deepEqual(
        [fast.nextU32(), fast.nextU32()],
        [js.nextU32(), js.nextU32()],
        `${label}: stream continues`,
      );
    }
  }
});

const tmp = tempDir();
after(() => tmp.cleanup());

test("della and breadcrumbs_ties merges (delta, factors, knots): byte-identical with MERGLOT_WASM=js", () => {
  const mods = layeredModules(2, 24, 4);
  for (let i = 0; i < 3; i++) makeAdapter(join(tmp.dir, `a${i}`), { seed: 30 + i, modules: mods });
  const cli = join(process.cwd(), "dist/src/cli/main.js");
  for (const method of ["della", "knots_della", "breadcrumbs_ties", "knots_breadcrumbs_ties"]) {
    for (const space of method.startsWith("knots_") ? [""] : ["delta", "factors"]) {
      const name = `${method}${space ? `-${space}` : ""}`;
      const recipe = writeRecipe(
        tmp.dir,
        `${name}.yaml`,
        `merge_method: ${method}\n${space ? `space: ${space}\n` : ""}parameters: { density: 0.4 }\n` +
          `models:\n  - model: a0\n  - model: a1\n    parameters: { weight: 0.7 }\n  - model: a2\n`,
      );
      const run = (out: string, env: Record<string, string>) => {
        const r = spawnSync(process.execPath, [cli, "merge", recipe, "-o", out], {
          cwd: tmp.dir,
          encoding: "utf8",
          env: { ...process.env, ...env },
        });
        assert.equal(r.status, 0, `${name}: ${r.stderr}`);
        return readFileSync(join(tmp.dir, out, "adapter_model.safetensors"));
      };
      assert.deepEqual(
        run(`${name}-wasm`, { MERGLOT_WASM: "" }),
        run(`${name}-js`, { MERGLOT_WASM: "js" }),
        name,
      );
    }
  }
});
