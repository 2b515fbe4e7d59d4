/** EngineRunner against an independent float64 forward of the same small model. */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineRunner } from "../../../src/eval/runners/engine.js";
import {
  DEFAULT_TINY,
  TOKENIZER_CONFIG,
  hfConfig,
  maxAbsDiff,
  randomWeights,
  referenceGreedy,
  referenceLogProbs,
  tinyVocab,
  withDeltas,
  writeTinyAdapter,
  writeTinyModel,
  type Weights,
} from "../../parity/tiny-llama.js";

const c = DEFAULT_TINY;
const w = randomWeights(c, 8);
const root = mkdtempSync(join(tmpdir(), "merglot-engine-runner-"));
const baseDir = join(root, "base");
let r: EngineRunner;

before(async () => {
  writeTinyModel(baseDir, c, w);
  r = await EngineRunner.open({ model: baseDir });
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Σ reference log-probs of `cont` after `ctx`. */
function refScore(weights: Weights, ctx: number[], cont: number[]): number {
  const rows = referenceLogProbs(c, weights, [...ctx, ...cont]);
  return cont.reduce((s, t, j) => s + rows[ctx.length - 1 + j]![t]!, 0);
}

describe("EngineRunner", () => {
  test("BOS from the tokenizer's post-processor; tokens as the merges say", () => {
    assert.equal(r.bos, 0);
    const id = (t: string) => tinyVocab().indexOf(t);
    assert.deepEqual(r.tokenize(" the cat sat on"), ["Ġthe", "Ġcat", "Ġsat", "Ġ", "on"].map(id));
    assert.equal(r.isEndOfGeneration(1), true);
  });

  test("scores of requests of different lengths, batched with padding, equal the reference", async () => {
    const requests = [
      { prompt: " the cat", continuation: " sat on the mat." },
      { prompt: "der", continuation: " hund" },
      { prompt: " le chat is in the mat, the dog", continuation: " is on it" },
      { prompt: " 42", continuation: " cats" },
    ];
    const got = await r.logProbs(requests);
    got.forEach((g, i) => {
      const want = refScore(w, r.encodePrompt(requests[i]!.prompt.trimEnd()), g.tokens);
      assert.ok(Math.abs(g.logProb - want) < 1e-4, `${g.logProb} vs ${want}`);
    });
    // one request per batch gives the same numbers
    const small = await EngineRunner.open({ model: baseDir, batchTokens: 1 });
    const alone = await small.logProbs(requests);
    alone.forEach((g, i) => assert.ok(Math.abs(g.logProb - got[i]!.logProb) < 1e-5));
  });

  test("log-prob rows and greedy generation equal the reference", async () => {
    const tokens = r.encodePrompt(" the cat sat on the mat");
    assert.ok(maxAbsDiff(await r.nextTokenLogProbs(tokens), referenceLogProbs(c, w, tokens)) < 1e-4);
    const [g] = await r.generate([{ prompt: " the cat", maxTokens: 6 }]);
    assert.deepEqual(g!.tokens, referenceGreedy(c, w, r.encodePrompt(" the cat"), 6));
    assert.equal(g!.finishReason, "length");
    const prompt = r.encodePrompt(" the cat");
    const greedy = referenceGreedy(c, w, prompt, 2);
    const [yes, no] = await r.scoreTokens([
      { context: prompt, continuation: greedy },
      { context: prompt, continuation: [greedy[0]!, (greedy[1]! + 1) % c.vocab] },
    ]);
    assert.equal(yes!.isGreedy, true);
    assert.equal(no!.isGreedy, false);
  });

  test("generation stops at EOS, which is not returned", async () => {
    const dir = join(root, "eos");
    const we: Weights = new Map(w);
    we.set("lm_head.weight", { shape: [c.vocab, c.hidden], data: new Float32Array(c.vocab * c.hidden) });
    writeTinyModel(dir, c, we);
    // all logits tie at 0, so greedy takes id 0, which this variant calls EOS
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...hfConfig(c), eos_token_id: 0 }));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ ...TOKENIZER_CONFIG, eos_token: "<|begin|>" }),
    );
    const e = await EngineRunner.open({ model: dir });
    const [g] = await e.generate([{ prompt: " the", maxTokens: 4 }]);
    // promptTokens: BOS and the prompt's own tokens.
    assert.deepEqual(g, {
      text: "",
      tokens: [],
      finishReason: "eos",
      promptTokens: 1 + e.tokenize(" the").length,
    });
  });

  test("adapters are merged with their scales", async () => {
    const a = join(root, "a");
    const b = join(root, "b");
    const ma = writeTinyAdapter(a, c, {
      seed: 1,
      modules: [{ module: "model.layers.0.self_attn.q_proj", rank: 2, alpha: 4 }],
    });
    const mb = writeTinyAdapter(b, c, {
      seed: 2,
      modules: [
        { module: "model.layers.0.self_attn.q_proj", rank: 3, alpha: 3 },
        { module: "model.layers.1.mlp.up_proj", rank: 3, alpha: 3 },
      ],
      useRslora: true,
    });
    const e = await EngineRunner.open({ model: baseDir, adapters: [{ path: a }, { path: b, scale: -0.5 }] });
    const merged = withDeltas(w, [...ma, ...mb.map((m) => ({ ...m, scaling: -0.5 * m.scaling }))]);
    const tokens = e.encodePrompt(" the cat sat");
    const diff = maxAbsDiff(await e.nextTokenLogProbs(tokens), referenceLogProbs(c, merged, tokens));
    assert.ok(diff < 1e-4, `${diff}`);
    assert.match(e.name, /engine \(f32\) base \+ a×1 \+ b×-0\.5/);
  });

  test("a closed runner refuses work", async () => {
    const e = await EngineRunner.open({ model: baseDir });
    await e.close();
    await assert.rejects(e.scoreTokens([{ context: [0], continuation: [3] }]), /the runner is closed/);
  });
});
