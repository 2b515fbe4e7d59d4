/**
 * LlamaCppRunner against an independent float64 forward of the same small models: exported GGUFs load from
 * files, tokenize as the HF tokenizer definitions say, and score / generate what the reference computes.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../../src/errors.js";
import { LlamaCppRunner } from "../../../src/eval/runners/llamacpp.js";
import { convertAdapterToGguf, convertModelToGguf } from "../../../src/formats/convert.js";
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
  type TinyConfig,
  type Weights,
} from "../../parity/tiny-llama.js";

const root = mkdtempSync(join(tmpdir(), "merglot-llamacpp-"));
const open: LlamaCppRunner[] = [];
let n = 0;

/** Export a tiny model and open it in llama.cpp. */
async function model(c: TinyConfig, w: Weights, opts: { edit?: (dir: string) => void } = {}) {
  const dir = join(root, `m${n++}`);
  writeTinyModel(dir, c, w);
  opts.edit?.(dir);
  const gguf = `${dir}.gguf`;
  convertModelToGguf(dir, gguf, { dtype: "F32" });
  const r = await LlamaCppRunner.open({
    model: gguf,
    exact: true,
    contextSize: 64,
    sequences: 3,
    threads: 1,
  });
  open.push(r);
  return { dir, gguf, runner: r };
}

const c = DEFAULT_TINY;
const w = randomWeights(c, 5);
let base: Awaited<ReturnType<typeof model>>;
const id = (t: string) => tinyVocab().indexOf(t);

before(async () => {
  base = await model(c, w);
});

after(async () => {
  for (const r of open) await r.close();
  rmSync(root, { recursive: true, force: true });
});

describe("LlamaCppRunner", () => {
  test("byte-level BPE tokenization follows the merges; BOS comes from add_bos_token", () => {
    const r = base.runner;
    assert.equal(r.bos, 0);
    assert.equal(r.vocabSize, 104);
    // " on": (o,n) has rank 6, (Ġ,o) rank 13, so "on" forms first and "Ġ"+"on" is no merge: [Ġ, on]
    const expected = ["Ġthe", "Ġcat", "Ġsat", "Ġ", "on", "Ġthe", "Ġmat", "."].map(id);
    assert.deepEqual(r.tokenize(" the cat sat on the mat."), expected);
    assert.equal(r.detokenize(expected), " the cat sat on the mat.");
    assert.equal(r.isEndOfGeneration(1), true);
    assert.equal(r.isEndOfGeneration(id("Ġthe")), false);
  });

  test("log-prob rows equal the float64 reference (llama GQA, qwen2 biases, llama3 RoPE with tied head)", async () => {
    const text = " the cat sat on the mat. der hund and die katze";
    const tokens = base.runner.encodePrompt(text);
    assert.ok(
      maxAbsDiff(await base.runner.nextTokenLogProbs(tokens), referenceLogProbs(c, w, tokens)) < 1e-4,
    );
    for (const variant of [
      { ...c, modelType: "qwen2" as const },
      { ...c, tie: true, llama3: { factor: 8, low: 1, high: 4, original: 16 } },
    ]) {
      const wv = randomWeights(variant, 6);
      const m = await model(variant, wv);
      const diff = maxAbsDiff(
        await m.runner.nextTokenLogProbs(tokens),
        referenceLogProbs(variant, wv, tokens),
      );
      assert.ok(diff < 1e-4, `${variant.modelType}${variant.tie ? " tied" : ""}: ${diff}`);
    }
  });

  test("F16 and BF16 exports load and stay near the reference (half-precision weights)", async () => {
    const tokens = base.runner.encodePrompt(" the cat sat on the mat.");
    const ref = referenceLogProbs(c, w, tokens);
    for (const dtype of ["F16", "BF16"] as const) {
      const gguf = join(root, `base-${dtype}.gguf`);
      convertModelToGguf(base.dir, gguf, { dtype });
      const r = await LlamaCppRunner.open({ model: gguf, exact: true, contextSize: 64, threads: 1 });
      open.push(r);
      const diff = maxAbsDiff(await r.nextTokenLogProbs(tokens), ref);
      // llama.cpp also rounds activations to the weight type in matmuls: f16 gives ~3e-3 here, bf16 ~2e-2
      assert.ok(diff < (dtype === "F16" ? 1e-2 : 1e-1), `${dtype}: ${diff}`);
      assert.ok(diff > 0, `${dtype} should not be bit-identical to f32`);
    }
  });

  test("continuation log-probs: batched over sequences with prefix reuse, equal to one at a time and to the reference", async () => {
    const r = base.runner;
    const prompts = [" the cat", "der hund", " le chat is"];
    const conts = [" sat on the mat", " is in", " and die katze", "!"];
    const requests = prompts.flatMap((p) => conts.map((q) => ({ prompt: p, continuation: q })));
    const batched = await r.logProbs(requests);
    for (const [i, req] of requests.entries()) {
      // alone the request is decoded in a different batch shape, so agreement is to rounding, not bitwise
      const [single] = await r.logProbs([req]);
      assert.ok(Math.abs(single!.logProb - batched[i]!.logProb) < 1e-5);
      const ctx = r.encodePrompt(req.prompt);
      const all = [...ctx, ...batched[i]!.tokens];
      const ref = referenceLogProbs(c, w, all);
      let want = 0;
      batched[i]!.tokens.forEach((t, j) => (want += ref[ctx.length - 1 + j]![t]!));
      assert.ok(
        Math.abs(batched[i]!.logProb - want) < 1e-4,
        `${JSON.stringify(req)}: ${batched[i]!.logProb} vs ${want}`,
      );
      assert.equal(batched[i]!.tokenLogProbs.length, batched[i]!.tokens.length);
    }
  });

  test("isGreedy is true exactly for the reference's greedy continuation", async () => {
    const r = base.runner;
    const prompt = r.encodePrompt(" the cat");
    const greedy = referenceGreedy(c, w, prompt, 3);
    const [yes, no] = await r.scoreTokens([
      { context: prompt, continuation: greedy },
      { context: prompt, continuation: [...greedy.slice(0, 2), (greedy[2]! + 1) % c.vocab] },
    ]);
    assert.equal(yes!.isGreedy, true);
    assert.equal(no!.isGreedy, false);
  });

  test("fast mode (flash attention, F16 KV cache, filtered logits) stays within 2e-2 of exact", async () => {
    const fast = await LlamaCppRunner.open({ model: base.gguf, contextSize: 64, threads: 1 });
    open.push(fast);
    const requests = [
      { prompt: " the cat", continuation: " sat on the mat" },
      { prompt: "der hund", continuation: " and die katze" },
    ];
    const a = await fast.logProbs(requests);
    const b = await base.runner.logProbs(requests);
    a.forEach((x, i) => {
      assert.ok(Math.abs(x.logProb - b[i]!.logProb) < 2e-2, `${x.logProb} vs ${b[i]!.logProb}`);
      assert.equal(x.isGreedy, b[i]!.isGreedy);
    });
  });

  test("greedy generation equals the reference; stop strings and maxTokens cut it", async () => {
    const r = base.runner;
    const prompts = [" the cat", "der hund", " 42"];
    const gens = await r.generate(prompts.map((p) => ({ prompt: p, maxTokens: 8 })));
    gens.forEach((g, i) => {
      assert.deepEqual(g.tokens, referenceGreedy(c, w, r.encodePrompt(prompts[i]!), 8));
      assert.equal(g.finishReason, "length");
      assert.equal(g.text, r.detokenize(g.tokens));
    });
    const full = gens[0]!;
    const stopAt = full.text.slice(2, 4);
    const [stopped] = await r.generate([{ prompt: prompts[0]!, maxTokens: 8, stop: [stopAt] }]);
    assert.equal(stopped!.finishReason, "stop");
    assert.equal(stopped!.text, full.text.slice(0, full.text.indexOf(stopAt)));
    assert.ok(full.text.startsWith(r.detokenize(stopped!.tokens)));
    const [none] = await r.generate([{ prompt: prompts[0]!, maxTokens: 0 }]);
    assert.deepEqual(none, {
      text: "",
      tokens: [],
      finishReason: "length",
      promptTokens: (r.bos === null ? 0 : 1) + r.tokenize(prompts[0]!).length,
    });
  });

  test("generation ends at the end-of-sequence token", async () => {
    // An all-zero head makes every logit 0; greedy decoding then takes the lowest id, 0, which this variant's
    // config and tokenizer_config name as EOS.
    const we: Weights = new Map(w);
    we.set("lm_head.weight", { shape: [c.vocab, c.hidden], data: new Float32Array(c.vocab * c.hidden) });
    const m = await model(c, we, {
      edit: (dir) => {
        writeFileSync(join(dir, "config.json"), JSON.stringify({ ...hfConfig(c), eos_token_id: 0 }));
        writeFileSync(
          join(dir, "tokenizer_config.json"),
          JSON.stringify({ ...TOKENIZER_CONFIG, eos_token: "<|begin|>" }),
        );
      },
    });
    assert.equal(m.runner.isEndOfGeneration(0), true);
    const [g] = await m.runner.generate([{ prompt: " the cat", maxTokens: 5 }]);
    assert.deepEqual(g, {
      text: "",
      tokens: [],
      finishReason: "eos",
      promptTokens: (m.runner.bos === null ? 0 : 1) + m.runner.tokenize(" the cat").length,
    });
  });

  test("a LoRA GGUF with a scale equals the reference with PEFT's scaling times that scale", async () => {
    const dir = join(root, "lora");
    const mods = writeTinyAdapter(dir, c, {
      seed: 9,
      modules: [
        { module: "model.layers.0.self_attn.q_proj", rank: 4, alpha: 8 },
        { module: "model.layers.1.self_attn.k_proj", rank: 4, alpha: 8 },
        { module: "model.layers.1.mlp.gate_proj", rank: 2, alpha: 8 },
      ],
    });
    const gguf = join(root, "lora.gguf");
    convertAdapterToGguf(dir, gguf, { base: base.dir });
    const r = await LlamaCppRunner.open({
      model: base.gguf,
      loras: [{ path: gguf, scale: 0.75 }],
      exact: true,
      contextSize: 64,
      threads: 1,
    });
    open.push(r);
    const tokens = r.encodePrompt(" the cat sat on the mat.");
    const ref = referenceLogProbs(
      c,
      withDeltas(
        w,
        mods.map((m) => ({ ...m, scaling: m.scaling * 0.75 })),
      ),
      tokens,
    );
    assert.ok(maxAbsDiff(await r.nextTokenLogProbs(tokens), ref) < 1e-4);
    assert.match(r.name, /llama\.cpp \(exact\) m0\.gguf \+ lora\.gguf×0\.75/);
  });
});

describe("LlamaCppRunner with a SentencePiece vocabulary", () => {
  test("llama.cpp merges by the scores from tokenizer.model, not left to right", async () => {
    // Real SentencePiece vocabularies carry all 256 byte pieces (llama.cpp falls back to them and aborts the
    // process when one is missing), so this one does too: 3 specials, 256 bytes, then the pieces under test.
    const sc = { ...c, vocab: 300 };
    const dir = join(root, "spm");
    writeTinyModel(dir, sc, randomWeights(sc, 4));
    rmSync(join(dir, "tokenizer.json"));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ add_bos_token: true }));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...hfConfig(sc), bos_token_id: 1, eos_token_id: 2 }),
    );
    const bytes: [string, number, number][] = Array.from({ length: 256 }, (_, b) => [
      `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
      0,
      6,
    ]);
    // "ca" outranks "▁c", so "▁cat" → ▁ + ca + t; merging left to right would give ▁c + at
    const pieces: [string, number, number][] = [
      ["<unk>", 0, 2],
      ["<s>", 0, 3],
      ["</s>", 0, 3],
      ...bytes,
      ["▁", -10, 1],
      ["c", -11, 1],
      ["a", -12, 1],
      ["t", -13, 1],
      ["ca", -1, 1],
      ["▁c", -2, 1],
      ["at", -3, 1],
    ];
    writeFileSync(join(dir, "tokenizer.model"), sentencePieceModel(pieces));
    const gguf = `${dir}.gguf`;
    const res = convertModelToGguf(dir, gguf, { dtype: "F32" });
    assert.equal(res.tokenizer.model, "llama");
    const r = await LlamaCppRunner.open({ model: gguf, exact: true, contextSize: 64, threads: 1 });
    open.push(r);
    const at = (p: string) => pieces.findIndex((x) => x[0] === p);
    assert.deepEqual(r.tokenize("cat"), [at("▁"), at("ca"), at("t")]);
    // a character without a piece falls back to its UTF-8 bytes
    assert.deepEqual(r.tokenize("cé"), [at("▁c"), at("<0xC3>"), at("<0xA9>")]);
    assert.equal(r.bos, 1); // config.json's bos_token_id (tokenizer_config names no token to look up)
  });
});

describe("LlamaCppRunner errors", () => {
  test("missing files, corrupt files, over-long requests, empty continuations, closed runners", async () => {
    // a corrupt header is refused by our validating reader before llama.cpp parses it
    const bad = join(root, "bad.gguf");
    writeFileSync(bad, "GGUF garbage that is not a header");
    await assert.rejects(
      LlamaCppRunner.open({ model: bad }),
      (e: unknown) => e instanceof MerglotError && e.message.startsWith(bad),
    );
    await assert.rejects(LlamaCppRunner.open({ model: join(root, "nope.gguf") }), (e: unknown) => {
      assert.ok(
        e instanceof MerglotError &&
          e.code === "llamacpp.missing" &&
          /nope\.gguf: no such GGUF file/.test(e.message),
      );
      return true;
    });
    const r = base.runner;
    await assert.rejects(
      r.scoreTokens([{ context: new Array(60).fill(3), continuation: new Array(10).fill(3) }]),
      /needs 70 tokens but the llama\.cpp context holds 64/,
    );
    await assert.rejects(r.logProbs([{ prompt: "the", continuation: "" }]), /empty continuation/);
    const tmp = await LlamaCppRunner.open({ model: base.gguf, contextSize: 64, threads: 1 });
    await tmp.close();
    await assert.rejects(tmp.generate([{ prompt: "a", maxTokens: 1 }]), /the runner is closed/);
  });

  test("a LoRA made for another architecture is refused with the files named", async () => {
    const qc = { ...c, modelType: "qwen2" as const };
    const qdir = join(root, "qwen-base");
    writeTinyModel(qdir, qc, randomWeights(qc, 3));
    const adir = join(root, "qwen-lora");
    writeTinyAdapter(adir, qc, {
      seed: 1,
      modules: [{ module: "model.layers.0.self_attn.v_proj", rank: 2, alpha: 2 }],
    });
    const gguf = join(root, "qwen-lora.gguf");
    convertAdapterToGguf(adir, gguf, { base: qdir });
    await assert.rejects(
      LlamaCppRunner.open({ model: base.gguf, loras: [{ path: gguf }], contextSize: 64, threads: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof MerglotError && e.code === "llamacpp.context", String(e));
        assert.match(
          e.message,
          /m0\.gguf: llama\.cpp could not create a context with LoRA .*qwen-lora\.gguf \(.*model arch and LoRA arch mismatch\)/,
        );
        return true;
      },
    );
  });
});

describe("LlamaCppRunner --gpu", () => {
  const opts = { exact: true, contextSize: 64, sequences: 3, threads: 1 } as const;
  const prompts = [" the cat", " on the mat", " 42"];

  test("gpu auto on a machine without a GPU binary falls back to the CPU: same name, same generations", async () => {
    const cpu = base.runner;
    const auto = await LlamaCppRunner.open({ model: base.gguf, ...opts, gpu: "auto" });
    open.push(auto);
    assert.equal(cpu.gpuBackend, false);
    assert.equal(auto.gpuBackend, false);
    assert.equal(auto.name, cpu.name);
    const a = await auto.generate(prompts.map((prompt) => ({ prompt, maxTokens: 6 })));
    const b = await cpu.generate(prompts.map((prompt) => ({ prompt, maxTokens: 6 })));
    assert.deepEqual(a, b);
  });

  test("gpu cuda / vulkan reach node-llama-cpp: its binary is used, or its absence is one line with the install step", async () => {
    // The repository's overrides install empty GPU packages, so in CI node-llama-cpp finds no CUDA/Vulkan
    // binary; after `npm run llama-gpu -- cuda` on a GPU machine the runner uses it.
    for (const gpu of ["cuda", "vulkan"] as const) {
      try {
        const r = await LlamaCppRunner.open({ model: base.gguf, ...opts, gpu });
        open.push(r);
        assert.equal(r.gpuBackend, gpu);
      } catch (e) {
        assert.ok(e instanceof MerglotError && e.code === "llamacpp.gpu", String(e));
        assert.equal(
          e.message,
          `llama.cpp could not load its ${gpu} binary (NoBinaryFoundError); in a clone of merglot run: ` +
            `npm run llama-gpu -- ${gpu}; where merglot is a dependency, node-llama-cpp installs ` +
            `@node-llama-cpp/*-${gpu} itself unless your package.json overrides remove it; or use --gpu off`,
        );
      }
    }
    await assert.rejects(
      LlamaCppRunner.open({ model: base.gguf, ...opts, gpu: "rocm" as never }),
      /gpu must be one of auto, cuda, vulkan, off, got "rocm"/,
    );
  });
});

/** sentencepiece_model.proto ModelProto with `pieces` (field 1: piece 1, score 2, type 3), hand-encoded. */
function sentencePieceModel(pieces: [string, number, number][]): Uint8Array {
  const out: number[] = [];
  for (const [piece, score, type] of pieces) {
    const text = [...Buffer.from(piece, "utf8")];
    const f = Buffer.alloc(4);
    f.writeFloatLE(score);
    const msg = [0x0a, text.length, ...text, 0x15, ...f, 0x18, type];
    out.push(0x0a, msg.length, ...msg);
  }
  return Uint8Array.from(out);
}
