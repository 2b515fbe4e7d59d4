/**
 * Checks that the demo's tasks are learnable by the demo's base model and that the base model alone is near
 * chance: for each (task, language) asked, renders the canonical rows to prompt/completion JSONL with a plain
 * template (below; the study itself uses the built-in task templates), trains a LoRA with `merglot train`,
 * and scores the test split with the engine runner, base model vs base + adapter.
 *   sentiment: accuracy of the highest log-prob label among " positive", " neutral", " negative";
 *   reasoning: accuracy (and acc_norm) of the highest log-prob choice text, as lm-evaluation-harness's
 *              multiple_choice (or, with --reasoning-target letter, of the letters " A".." E");
 *   summarization: ROUGE-L F (multilingual) and exact-match rate of a greedy summary (≤ 16 new tokens,
 *                  first line);
 *   extraction: item recall and hallucination rate of the greedy list (≤ 24 new tokens).
 * Prints one line per (task, language) with the train time (and, with --cross, the adapter's scores on the
 * other languages). Needs `npm run build`.
 *   node scripts/check-demo-learnability.mjs [--tasks sentiment,reasoning] [--langs en,ja] [--epochs 4] [--cross]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { EngineRunner } from "../dist/src/eval/runners/engine.js";
import { rouge } from "../dist/src/eval/metrics/rouge/rouge.js";
import { hallucinationRate } from "../dist/src/eval/metrics/hallucination.js";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const MODEL = arg("--model", "data/demo/model");
const DATA = arg("--data", "data/demo/tasks");
/** Also score each adapter on the other languages' test splits. */
const CROSS = process.argv.includes("--cross");
const TASKS = arg("--tasks", "sentiment,reasoning").split(",");
const LANGS = arg("--langs", "en,ja").split(",");
/**
 * Reasoning target: the answer's text, scored over the five choice texts (as the built-in reasoning task does),
 * or the answer's letter.
 */
const REASONING_TARGET = arg("--reasoning-target", "text");
const TRAIN_FLAGS = [
  "--r", arg("--r", "16"),
  "--alpha", arg("--alpha", "32"),
  "--epochs", arg("--epochs", "4"),
  "--lr", arg("--lr", "0.005"),
  "--batch", arg("--batch", "8"),
  "--seq-len", "128",
  "--schedule", "cosine",
  "--warmup", "0.05",
  "--seed", "0",
]; // prettier-ignore

const read = (path) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

/** The plain templates of this check: prompt, completion (the gold), and the options scored for it. */
const TEMPLATE = {
  sentiment: (r) => ({ prompt: `${r.text}\nSentiment:`, completion: ` ${r.label}` }),
  reasoning: (r) => ({
    prompt: `${r.question}\n${r.choices.map((c, i) => `${"ABCDE"[i]}. ${c}`).join("\n")}\nAnswer:`,
    completion: REASONING_TARGET === "text" ? ` ${r.choices["ABCDE".indexOf(r.answer)]}` : ` ${r.answer}`,
  }),
  summarization: (r) => ({ prompt: `${r.document}\nSummary:`, completion: ` ${r.summary}` }),
  extraction: (r) => ({ prompt: `${r.text}\nCountries:`, completion: `\n${r.items.join("\n")}` }),
};
const OPTIONS = {
  sentiment: () => [" positive", " neutral", " negative"],
  reasoning: (r) =>
    REASONING_TARGET === "text" ? r.choices.map((c) => ` ${c}`) : [" A", " B", " C", " D", " E"],
};

async function score(task, rows, adapter) {
  const runner = await EngineRunner.open({ model: MODEL, adapters: adapter ? [{ path: adapter }] : [] });
  try {
    if (OPTIONS[task]) {
      const k = OPTIONS[task](rows[0]).length;
      const reqs = rows.flatMap((r) =>
        OPTIONS[task](r).map((o) => ({ prompt: TEMPLATE[task](r).prompt, continuation: o })),
      );
      const lp = await runner.logProbs(reqs);
      // accuracy: highest log-prob; acc_norm: highest log-prob per character (lm-evaluation-harness)
      let right = 0;
      let rightNorm = 0;
      rows.forEach((r, i) => {
        const opts = OPTIONS[task](r);
        let best = 0;
        let bestNorm = 0;
        const norm = (j) => lp[i * k + j].logProb / opts[j].length;
        for (let j = 1; j < k; j++) {
          if (lp[i * k + j].logProb > lp[i * k + best].logProb) best = j;
          if (norm(j) > norm(bestNorm)) bestNorm = j;
        }
        if (opts[best] === TEMPLATE[task](r).completion) right++;
        if (opts[bestNorm] === TEMPLATE[task](r).completion) rightNorm++;
      });
      return { accuracy: right / rows.length, acc_norm: rightNorm / rows.length };
    }
    const gens = await runner.generate(
      rows.map((r) => ({ prompt: TEMPLATE[task](r).prompt, maxTokens: task === "summarization" ? 16 : 24 })),
    );
    if (task === "summarization") {
      const preds = gens.map((g) => g.text.trim().split("\n")[0]);
      const res = await rouge(
        preds,
        rows.map((r) => r.summary),
        { lang: rows[0].lang, types: ["rougeL"] },
      );
      const exact = preds.filter((p, i) => p.trim() === rows[i].summary).length / rows.length;
      return { rougeL: res.scores.rougeL.fmeasure.value, exact, example: preds[0] };
    }
    const items = gens.map((g) =>
      g.text
        .split("\n")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    );
    let found = 0;
    let gold = 0;
    rows.forEach((r, i) => {
      gold += r.items.length;
      for (const it of r.items) if (items[i].includes(it)) found++;
    });
    const h = hallucinationRate(rows.map((r, i) => ({ input: r.text, items: items[i] })));
    return { recall: found / gold, hallucination: h.rate, example: items[0].join(" | ") };
  } finally {
    await runner.close();
  }
}

const fmt = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(3) : JSON.stringify(v)}`)
    .join(", ");

const work = mkdtempSync(join(tmpdir(), "merglot-learnability-"));
try {
  for (const task of TASKS) {
    for (const lang of LANGS) {
      const dir = join(DATA, task, lang);
      const train = read(join(dir, "train.jsonl"));
      const test = read(join(dir, "test.jsonl"));
      const data = join(work, `${task}-${lang}.jsonl`);
      writeFileSync(data, train.map((r) => JSON.stringify(TEMPLATE[task](r))).join("\n") + "\n");
      const out = join(work, `${task}-${lang}`);
      const t0 = performance.now();
      execFileSync(
        process.execPath,
        ["dist/src/cli/main.js", "train", "--base", MODEL, "--data", data, "-o", out, ...TRAIN_FLAGS],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      const seconds = (performance.now() - t0) / 1000;
      const log = JSON.parse(readFileSync(join(out, "training_log.json"), "utf8"));
      const base = await score(task, test, null);
      const tuned = await score(task, test, out);
      console.log(
        `${task}/${lang}: train ${seconds.toFixed(1)} s (${train.length} rows, ${log.tokens ?? "?"} tokens) | ` +
          `base: ${fmt(base)} | adapter: ${fmt(tuned)}`,
      );
      if (CROSS) {
        // the same adapter on the other languages' test splits: how much of what it learnt is language-specific
        for (const other of LANGS.filter((l) => l !== lang)) {
          const rows = read(join(DATA, task, other, "test.jsonl"));
          console.log(`  ${task}/${lang} adapter on ${other}: ${fmt(await score(task, rows, out))}`);
        }
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
