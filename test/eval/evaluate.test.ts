/**
 * Each built-in task end to end on a tiny random llama (engine runner), against expectations computed here
 * independently: the exact prompt written out by hand from the task file, continuation log-probabilities from
 * the float64 reference forward (test/parity/tiny-llama.ts), greedy generations from a naive loop over the
 * model's full next-token distribution, and the metrics from their published definitions. Also: the output
 * files, the content cache and the overwrite rule.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { loadModel } from "../../src/engine/load.js";
import { logProbRows } from "../../src/engine/score.js";
import type { Example } from "../../src/data/example.js";
import { evaluate, type Sample } from "../../src/eval/evaluate.js";
import { MerglotError } from "../../src/errors.js";
import { referenceLogProbs, type Weights } from "../parity/tiny-llama.js";
import { BOS_ID, BYTE_TINY, EOS_ID, byteTokenizerJson, writeByteModel } from "../tasks/tiny-model.js";

const root = mkdtempSync(join(tmpdir(), "merglot-eval-"));
const modelDir = join(root, "model");
let weights: Weights;
const tok = new Tokenizer(byteTokenizerJson() as object, {});
const enc = (s: string): number[] => tok.encode(s, { add_special_tokens: false }).ids as number[];

before(() => {
  weights = writeByteModel(modelDir, 21);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** log p(continuation | BOS + prompt) under the float64 reference, tokenized as lm-evaluation-harness does. */
function referenceScore(prompt: string, continuation: string): number {
  const ctx = [BOS_ID, ...enc(prompt)];
  const whole = [BOS_ID, ...enc(prompt + continuation)];
  assert.deepEqual(whole.slice(0, ctx.length), ctx, "the prompt's tokens are a prefix of the joined text's");
  const cont = whole.slice(ctx.length);
  const rows = referenceLogProbs(BYTE_TINY, weights, whole);
  let s = 0;
  cont.forEach((t, i) => (s += rows[ctx.length - 1 + i]![t]!));
  return s;
}

/** Naive greedy decoding: the full forward over the whole sequence at every step, argmax (lowest id on ties). */
function referenceGreedy(prompt: string, maxTokens: number, stop: string): string {
  const model = loadModel(modelDir);
  const seq = [BOS_ID, ...enc(prompt)];
  const out: number[] = [];
  const V = BYTE_TINY.vocab;
  for (let step = 0; step < maxTokens; step++) {
    const rows = logProbRows(model, seq);
    let best = 0;
    const o = (seq.length - 1) * V;
    for (let c = 1; c < V; c++) if (rows[o + c]! > rows[o + best]!) best = c;
    if (best === EOS_ID) break;
    out.push(best);
    seq.push(best);
  }
  const text = out.length ? tok.decode(out, { skip_special_tokens: false }) : "";
  const cut = text.indexOf(stop);
  return cut >= 0 ? text.slice(0, cut) : text;
}

function argmax(xs: number[]): number {
  let b = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[b]!) b = i;
  return b;
}

/** scikit-learn's macro P/R/F1 and accuracy with a fixed label list (zero_division = 0). */
function sklearnMacro(pred: (string | null)[], gold: string[], labels: string[]) {
  let p = 0;
  let r = 0;
  let f = 0;
  for (const l of labels) {
    const tp = pred.filter((x, i) => x === l && gold[i] === l).length;
    const ps = pred.filter((x) => x === l).length;
    const ts = gold.filter((x) => x === l).length;
    const pi = ps ? tp / ps : 0;
    const ri = ts ? tp / ts : 0;
    p += pi;
    r += ri;
    f += pi + ri ? (2 * pi * ri) / (pi + ri) : 0;
  }
  const n = labels.length;
  return {
    macro_precision: p / n,
    macro_recall: r / n,
    macro_f1: f / n,
    accuracy: pred.filter((x, i) => x === gold[i]).length / gold.length,
  };
}

const close = (a: number, b: number, tol = 1e-3) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function readSamples(dir: string): Sample[] {
  return readFileSync(join(dir, "samples.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Sample);
}

describe("sentiment", () => {
  const rows: Example[] = [
    { id: "s1", lang: "en", text: "I love this phone", label: "positive" },
    { id: "s2", lang: "en", text: "It arrived on time", label: "neutral" },
    { id: "s3", lang: "en", text: "Broken after a day", label: "negative" },
    { id: "s4", lang: "en", text: "Great value", label: "positive" },
  ];
  const labels = ["positive", "neutral", "negative"];

  test("scored: prompts, continuation log-probs, predictions and macro metrics match the reference", async () => {
    const out = join(root, "sentiment");
    const r = await evaluate({ model: modelDir, task: "sentiment", lang: "en", examples: rows, outDir: out });
    const samples = readSamples(out);
    assert.equal(samples.length, rows.length);
    const preds: string[] = [];
    rows.forEach((row, i) => {
      const s = samples[i]!;
      const prompt = `Is the sentiment of the following text positive, neutral or negative?\nText: ${row.text as string}\nSentiment:`;
      assert.equal(s.prompt, prompt);
      assert.deepEqual(
        s.choices!.map((c) => c.text),
        [" positive", " neutral", " negative"],
      );
      const ref = labels.map((l) => referenceScore(prompt, " " + l));
      s.choices!.forEach((c, k) => close(c.logprob, ref[k]!));
      const expected = labels[argmax(ref)]!;
      preds.push(expected);
      assert.equal(s.prediction, expected);
      assert.equal(s.gold, row.label);
      assert.equal(s.accuracy, expected === row.label ? 1 : 0);
    });
    const want = sklearnMacro(
      preds,
      rows.map((x) => x.label as string),
      labels,
    );
    for (const [k, v] of Object.entries(want)) close(r.metrics[k]!, v, 1e-12);
    const metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
    assert.deepEqual(Object.keys(metrics), [
      "task",
      "lang",
      "split",
      "count",
      "model",
      "adapters",
      "runner",
      "mode",
      "metrics",
      "ci",
      "seconds",
      "tokens",
    ]);
    assert.deepEqual(Object.keys(metrics.metrics), [
      "macro_f1",
      "macro_precision",
      "macro_recall",
      "accuracy",
    ]);
    for (const k of Object.keys(metrics.metrics)) {
      const [lo, hi] = metrics.ci[k];
      assert.ok(
        lo <= metrics.metrics[k] + 1e-12 && metrics.metrics[k] <= hi + 1e-12,
        `${k} inside its interval`,
      );
    }
    assert.equal(metrics.count, 4);
    assert.equal(metrics.runner, "engine");
    // tokens: BOS + prompt tokens + each choice's tokens, per example
    const tokens = rows.reduce((a, row) => {
      const prompt = samples.find((s) => s.id === row.id)!.prompt;
      const ctx = 1 + enc(prompt).length;
      return a + ctx + labels.reduce((b, l) => b + enc(prompt + " " + l).length - (ctx - 1), 0);
    }, 0);
    assert.equal(metrics.tokens, tokens);
  });

  test("an unchanged re-run returns the stored results; changed data without --force is refused", async () => {
    const out = join(root, "sentiment");
    const before = readFileSync(join(out, "metrics.json"), "utf8");
    const again = await evaluate({
      model: modelDir,
      task: "sentiment",
      lang: "en",
      examples: rows,
      outDir: out,
    });
    assert.equal(again.cached, true);
    assert.equal(readFileSync(join(out, "metrics.json"), "utf8"), before);
    const changed = rows.map((x) => (x.id === "s4" ? { ...x, label: "negative" } : x));
    await assert.rejects(
      evaluate({ model: modelDir, task: "sentiment", lang: "en", examples: changed, outDir: out }),
      (e: unknown) => e instanceof MerglotError && /already exists/.test(e.message),
    );
    assert.equal(readFileSync(join(out, "metrics.json"), "utf8"), before);
    const forced = await evaluate({
      model: modelDir,
      task: "sentiment",
      lang: "en",
      examples: changed,
      outDir: out,
      force: true,
    });
    assert.equal(forced.cached, false);
    assert.equal(readSamples(out)[3]!.gold, "negative");
  });

  test("generate mode: answers are parsed; unparsable ones count as wrong and are reported", async () => {
    const r = await evaluate({
      model: modelDir,
      task: "sentiment",
      lang: "en",
      examples: rows,
      mode: "generate",
    });
    let failures = 0;
    rows.forEach((row, i) => {
      const prompt = `Is the sentiment of the following text positive, neutral or negative?\nText: ${row.text as string}\nSentiment:`;
      const gen = referenceGreedy(prompt, 8, "\n");
      const s = r.samples[i]!;
      assert.equal(s.generation, gen);
      const answer = gen.trim().toLowerCase();
      const named = labels.find((l) => answer === l || answer.startsWith(l + " "));
      if (named === undefined) failures++;
      assert.equal(s.parse_error, named === undefined);
      assert.equal(s.prediction, named ?? null);
    });
    assert.equal(r.parse_failures, failures);
    assert.equal(r.mode, "generate");
  });
});

describe("reasoning", () => {
  const rows: Example[] = [
    {
      id: "q1",
      lang: "de",
      question: "Wo schläft eine Katze?",
      choices: ["Bett", "Ozean", "Mond", "Ofen", "Baum"],
      answer: "A",
    },
    {
      id: "q2",
      lang: "de",
      question: "Was ist nass?",
      choices: ["Sand", "Wasser", "Feuer", "Stein", "Luft"],
      answer: "B",
    },
    {
      id: "q3",
      lang: "de",
      question: "Was fliegt?",
      choices: ["Fisch", "Hund", "Vogel", "Kuh", "Auto"],
      answer: "C",
    },
  ];

  test("acc and acc_norm (lm-evaluation-harness) from reference log-likelihoods of the option texts", async () => {
    const r = await evaluate({ model: modelDir, task: "reasoning", lang: "de", examples: rows });
    let acc = 0;
    let accNorm = 0;
    rows.forEach((row, i) => {
      const c = row.choices as string[];
      const prompt = `Frage: ${row.question as string}\nA. ${c[0]}\nB. ${c[1]}\nC. ${c[2]}\nD. ${c[3]}\nE. ${c[4]}\nAntwort:`;
      const s = r.samples[i]!;
      assert.equal(s.prompt, prompt);
      const ref = c.map((x) => referenceScore(prompt, " " + x));
      s.choices!.forEach((ch, k) => close(ch.logprob, ref[k]!));
      const gold = "ABCDE".indexOf(row.answer as string);
      const a = argmax(ref) === gold ? 1 : 0;
      const n = argmax(ref.map((l, k) => l / [...c[k]!].length)) === gold ? 1 : 0;
      assert.equal(s.acc, a);
      assert.equal(s.acc_norm, n);
      assert.equal(s.prediction, "ABCDE"[argmax(ref)]);
      acc += a;
      accNorm += n;
    });
    close(r.metrics.acc!, acc / rows.length, 1e-12);
    close(r.metrics.acc_norm!, accNorm / rows.length, 1e-12);
    assert.deepEqual(Object.keys(r.metrics), ["acc", "acc_norm"]);
  });
});

describe("summarization", () => {
  test("greedy generation within the token budget, cut at the stop string; ROUGE per example", async () => {
    const docs = ["Der Hund lief durch den Park.", "Es regnete den ganzen Tag in Berlin."];
    const gens = docs.map((d) =>
      referenceGreedy(
        `Fasse den folgenden Artikel in wenigen Sätzen zusammen.\nArtikel: ${d}\nZusammenfassung:`,
        128,
        "\n\n",
      ),
    );
    // The first reference is the expected generation itself (ROUGE 1 when it has words), the second shares nothing.
    const rows: Example[] = [
      { id: "d1", lang: "de", document: docs[0], summary: gens[0]!.trim() || "x" },
      { id: "d2", lang: "de", document: docs[1], summary: "völlig anders" },
    ];
    const r = await evaluate({ model: modelDir, task: "summarization", lang: "de", examples: rows });
    r.samples.forEach((s, i) => {
      assert.equal(s.generation, gens[i]);
      assert.equal(s.prediction, gens[i]!.trim());
    });
    assert.deepEqual(Object.keys(r.metrics), ["rouge1", "rouge2", "rougeL", "rougeLsum"]);
    for (const k of Object.keys(r.metrics)) {
      const per = r.samples.map((s) => s[k] as number);
      close(r.metrics[k]!, (per[0]! + per[1]!) / 2, 1e-12);
    }
    assert.equal(r.samples[1]!.rouge1, 0);
  });
});

describe("extraction", () => {
  test("items one per line; hallucination rate and item precision/recall from their definitions", async () => {
    const texts = ["Apple opened a store in Paris.", "Tokyo hosts the games."];
    const gens = texts.map((t) =>
      referenceGreedy(
        `List the themes and entities mentioned in the following text, one per line, using the text's own words.\nText: ${t}\nItems:`,
        128,
        "\n\n",
      ),
    );
    const items = gens.map((g) =>
      g
        .split("\n")
        .map((l) => l.replace(/^\s*(?:[-*•·]|\d+[.)])\s*/u, "").trim())
        .filter((l) => l !== ""),
    );
    const rows: Example[] = [
      {
        id: "e1",
        lang: "en",
        text: texts[0],
        items: [...(items[0]!.length ? [items[0]![0]!] : []), "Paris"],
      },
      { id: "e2", lang: "en", text: texts[1] },
    ];
    const r = await evaluate({ model: modelDir, task: "extraction", lang: "en", examples: rows });
    const norm = (s: string) => s.normalize("NFKC").replace(/\s+/gu, " ").trim();
    let n = 0;
    let unsupported = 0;
    r.samples.forEach((s, i) => {
      assert.equal(s.generation, gens[i]);
      assert.deepEqual(s.items, items[i]);
      for (const it of items[i]!) {
        if (norm(it) === "") continue;
        n++;
        if (!norm(texts[i]!).includes(norm(it))) unsupported++;
      }
    });
    close(r.metrics.hallucination_rate!, n === 0 ? 0 : unsupported / n, 1e-12);
    const refs = rows[0]!.items as string[];
    const hit = items[0]!.length ? 1 + (items[0]!.slice(1).some((x) => norm(x) === "Paris") ? 1 : 0) : 0;
    close(r.metrics.item_precision!, items[0]!.length ? hit / items[0]!.length : 0, 1e-12);
    close(r.metrics.item_recall!, hit / refs.length, 1e-12);
    assert.equal(r.samples[1]!.item_precision, undefined, "no reference items: no item scores");
  });
});

describe("bad input writes nothing", () => {
  test("a label outside the label set, a wrong-length choice list, an unknown task", async () => {
    const out = join(root, "bad");
    await assert.rejects(
      evaluate({
        model: modelDir,
        task: "sentiment",
        lang: "en",
        examples: [{ id: "x1", lang: "en", text: "hm", label: "mixed" }],
        outDir: out,
      }),
      /example x1: label "mixed" is not one of the labels \(positive, neutral, negative\)/,
    );
    await assert.rejects(
      evaluate({
        model: modelDir,
        task: "reasoning",
        lang: "en",
        examples: [{ id: "q9", lang: "en", question: "?", choices: ["a", "b", "c", "d"], answer: "A" }],
        outDir: out,
      }),
      /example q9: 4 choices, but task reasoning has 5 \(A, B, C, D, E\)/,
    );
    await assert.rejects(
      evaluate({ model: modelDir, task: "sentimentt", lang: "en", examples: [], outDir: out }),
      /unknown task "sentimentt" \(built-in: extraction, reasoning, sentiment, summarization/,
    );
    assert.equal(existsSync(out), false);
  });
});
