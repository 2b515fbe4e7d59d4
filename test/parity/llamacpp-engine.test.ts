/**
 * Parity between llama.cpp (exact mode) and merglot's engine on a small random llama (GQA, untied head):
 * the base model exported to GGUF, LoRA adapters exported to GGUF (plain, rsLoRA with rank/alpha patterns,
 * and a KnOTS merge of two adapters), log-prob rows ≤ 1e-3 apart and greedy generations identical. Every
 * adapter case is also checked against an independent float64 forward with PEFT's scaling applied densely,
 * and shown to move the outputs, so that neither side can agree with the other by doing nothing.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineRunner } from "../../src/eval/runners/engine.js";
import { LlamaCppRunner, type LlamaCppLora } from "../../src/eval/runners/llamacpp.js";
import type { Runner } from "../../src/eval/runners/runner.js";
import { convertAdapterToGguf, convertModelToGguf } from "../../src/formats/convert.js";
import { LoraAdapter } from "../../src/formats/peft.js";
import { merge } from "../../src/merge/engine.js";
import {
  DEFAULT_TINY,
  maxAbsDiff,
  randomWeights,
  referenceLogProbs,
  withDeltas,
  writeTinyAdapter,
  writeTinyModel,
  type TinyLora,
  type TinyLoraModule,
} from "./tiny-llama.js";

const TOL = 1e-3;
const PROMPTS = [
  " the cat sat on the mat.",
  "der hund and die katze",
  " le chat is in the mat, the dog is on it!",
  " 42 cats",
];

const c = DEFAULT_TINY;
const weights = randomWeights(c, 11);
const root = mkdtempSync(join(tmpdir(), "merglot-parity-"));
const baseDir = join(root, "base");
const baseGguf = join(root, "base.gguf");
const open: Runner[] = [];
let engineBase: EngineRunner;
let cppBase: LlamaCppRunner;

async function cpp(loras: LlamaCppLora[] = []): Promise<LlamaCppRunner> {
  const r = await LlamaCppRunner.open({
    model: baseGguf,
    loras,
    exact: true,
    contextSize: 128,
    sequences: 2,
    threads: 1,
  });
  open.push(r);
  return r;
}

async function engine(adapters: { path: string; scale?: number }[] = []): Promise<EngineRunner> {
  const r = await EngineRunner.open({ model: baseDir, adapters });
  open.push(r);
  return r;
}

/** Log-prob rows of every prompt under both runners (and their tokenizations, which must agree). */
async function rows(
  a: Runner,
  b: Runner,
): Promise<{ a: Float64Array[]; b: Float64Array[]; tokens: number[][] }> {
  const out = { a: [] as Float64Array[], b: [] as Float64Array[], tokens: [] as number[][] };
  for (const p of PROMPTS) {
    const ta = a.bos === null ? a.tokenize(p) : [a.bos, ...a.tokenize(p)];
    const tb = b.bos === null ? b.tokenize(p) : [b.bos, ...b.tokenize(p)];
    assert.deepEqual(ta, tb, `tokenization of ${JSON.stringify(p)}`);
    out.a.push(...(await a.nextTokenLogProbs(ta)));
    out.b.push(...(await b.nextTokenLogProbs(tb)));
    out.tokens.push(ta);
  }
  return out;
}

function referenceRows(w: typeof weights, tokens: number[][]): Float64Array[] {
  return tokens.flatMap((t) => referenceLogProbs(c, w, t));
}

before(async () => {
  writeTinyModel(baseDir, c, weights);
  convertModelToGguf(baseDir, baseGguf, { dtype: "F32" });
  cppBase = await cpp();
  engineBase = await engine();
});

after(async () => {
  for (const r of open) await r.close();
  rmSync(root, { recursive: true, force: true });
});

/** Compare an adapter case: llama.cpp with LoRA GGUFs vs the engine with PEFT adapters vs the reference. */
async function checkAdapter(
  cppLoras: LlamaCppLora[],
  engineAdapters: { path: string; scale?: number }[],
  reference: typeof weights,
): Promise<void> {
  const l = await cpp(cppLoras);
  const e = await engine(engineAdapters);
  const got = await rows(l, e);
  const diff = maxAbsDiff(got.a, got.b);
  assert.ok(diff <= TOL, `llama.cpp vs engine: ${diff}`);
  const ref = referenceRows(reference, got.tokens);
  const refDiff = maxAbsDiff(got.b, ref);
  assert.ok(refDiff <= TOL, `engine vs float64 reference: ${refDiff}`);
  const moved = maxAbsDiff(got.a, referenceRows(weights, got.tokens));
  assert.ok(moved > 0.05, `the adapter should change the log-probs (moved ${moved})`);
  for (const p of PROMPTS.slice(0, 2)) {
    const [ga] = await l.generate([{ prompt: p, maxTokens: 10 }]);
    const [gb] = await e.generate([{ prompt: p, maxTokens: 10 }]);
    assert.deepEqual(ga!.tokens, gb!.tokens, `greedy continuation of ${JSON.stringify(p)}`);
  }
}

const ALL_KINDS = [
  "self_attn.q_proj",
  "self_attn.k_proj",
  "self_attn.v_proj",
  "self_attn.o_proj",
  "mlp.gate_proj",
  "mlp.up_proj",
  "mlp.down_proj",
];
const everyModule = (rank: number, alpha: number): TinyLoraModule[] =>
  [0, 1].flatMap((l) => ALL_KINDS.map((k) => ({ module: `model.layers.${l}.${k}`, rank, alpha })));

describe("llama.cpp (exact) and the engine agree", () => {
  test("base model: log-prob rows ≤ 1e-3 on several prompts, both equal to the float64 reference", async () => {
    const got = await rows(cppBase, engineBase);
    const diff = maxAbsDiff(got.a, got.b);
    assert.ok(diff <= TOL, `llama.cpp vs engine: ${diff}`);
    assert.ok(maxAbsDiff(got.a, referenceRows(weights, got.tokens)) <= TOL);
    assert.equal(
      got.a.length,
      got.tokens.reduce((s, t) => s + t.length, 0),
    );
  });

  test("base model: continuation log-probs and greedy flags agree; greedy generations are identical", async () => {
    const requests = [
      { prompt: " the cat", continuation: " sat on the mat" },
      { prompt: " the cat ", continuation: "is in" },
      { prompt: "der hund", continuation: " and die katze" },
      { prompt: "der hund", continuation: " and" },
    ];
    const a = await cppBase.logProbs(requests);
    const b = await engineBase.logProbs(requests);
    a.forEach((x, i) => {
      assert.deepEqual(x.tokens, b[i]!.tokens);
      assert.ok(Math.abs(x.logProb - b[i]!.logProb) <= TOL, `${x.logProb} vs ${b[i]!.logProb}`);
      assert.equal(x.isGreedy, b[i]!.isGreedy);
    });
    const gens = PROMPTS.map((p) => ({ prompt: p, maxTokens: 12 }));
    const ga = await cppBase.generate(gens);
    const gb = await engineBase.generate(gens);
    assert.deepEqual(
      ga.map((g) => g.tokens),
      gb.map((g) => g.tokens),
    );
    assert.ok(ga.every((g) => g.tokens.length > 0));
  });

  test("a PEFT LoRA on every module, exported to GGUF, at scale 1 and 0.5", async () => {
    const dir = join(root, "lora");
    const mods = writeTinyAdapter(dir, c, { seed: 21, modules: everyModule(4, 8) });
    const gguf = join(root, "lora.gguf");
    convertAdapterToGguf(dir, gguf, { base: baseDir });
    await checkAdapter([{ path: gguf }], [{ path: dir }], withDeltas(weights, mods));
    const half = mods.map((m) => ({ ...m, scaling: m.scaling / 2 }));
    await checkAdapter([{ path: gguf, scale: 0.5 }], [{ path: dir, scale: 0.5 }], withDeltas(weights, half));
  });

  test("rsLoRA with rank and alpha patterns: llama.cpp applies PEFT's per-module scaling", async () => {
    const dir = join(root, "rslora");
    const modules: TinyLoraModule[] = [
      { module: "model.layers.0.self_attn.q_proj", rank: 4, alpha: 16 },
      { module: "model.layers.0.self_attn.k_proj", rank: 2, alpha: 16 },
      { module: "model.layers.0.self_attn.v_proj", rank: 4, alpha: 6 },
      { module: "model.layers.1.self_attn.o_proj", rank: 8, alpha: 3 },
      { module: "model.layers.1.mlp.down_proj", rank: 1, alpha: 16 },
      { module: "model.layers.1.mlp.up_proj", rank: 4, alpha: 40 },
    ];
    const mods = writeTinyAdapter(dir, c, { seed: 22, modules, useRslora: true });
    // the helper computed PEFT's scaling alpha/√r itself; the adapter's own reader must agree
    const opened = LoraAdapter.open(dir);
    try {
      for (const m of mods) assert.ok(Math.abs(opened.get(m.module)!.scaling - m.scaling) < 1e-12);
    } finally {
      opened.close();
    }
    const gguf = join(root, "rslora.gguf");
    const res = convertAdapterToGguf(dir, gguf, { base: baseDir });
    assert.ok(res.foldedModules > 0, "one file alpha cannot express these scalings without folding");
    await checkAdapter([{ path: gguf }], [{ path: dir }], withDeltas(weights, mods));
  });

  test("a KnOTS-TIES merge of two adapters (rank 2·4), exported to GGUF", async () => {
    const modules: TinyLoraModule[] = [0, 1].flatMap((l) =>
      ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"].map((k) => ({
        module: `model.layers.${l}.${k}`,
        rank: 4,
        alpha: 8,
      })),
    );
    const a = join(root, "lang-a");
    const b = join(root, "lang-b");
    writeTinyAdapter(a, c, { seed: 31, modules, base: baseDir });
    writeTinyAdapter(b, c, { seed: 32, modules, base: baseDir });
    const out = join(root, "knots");
    await merge(
      {
        merge_method: "knots_ties",
        models: [{ model: a }, { model: b }],
        parameters: { density: 0.6 },
        output: { rank: "exact", dtype: "float32" },
      },
      { output: out, threads: 1 },
    );
    const merged = LoraAdapter.open(out);
    let deltas: TinyLora[];
    try {
      assert.equal(merged.modules.length, modules.length);
      assert.ok(merged.modules.every((m) => m.rank <= 8) && merged.modules.some((m) => m.rank > 4));
      deltas = merged.modules.map((m) => ({
        module: m.name,
        rank: m.rank,
        a: merged.readA(m),
        b: merged.readB(m),
        scaling: m.scaling,
      }));
    } finally {
      merged.close();
    }
    const gguf = join(root, "knots.gguf");
    convertAdapterToGguf(out, gguf, { base: baseDir });
    await checkAdapter([{ path: gguf }], [{ path: out }], withDeltas(weights, deltas));
  });
});
