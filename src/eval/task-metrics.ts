/**
 * A task's metrics over evaluated examples, each with a bootstrap confidence interval (seeded percentile
 * bootstrap over examples, src/eval/metrics/bootstrap.ts), plus each example's own values for samples.jsonl.
 * The definitions are those of src/eval/metrics: scikit-learn's macro averages with the task's labels fixed,
 * lm-evaluation-harness acc / acc_norm, ROUGE in multilingual mode, BERTScore, hallucination rate.
 *
 * Item precision / recall (extraction): over the examples that have reference items, matched items / predicted
 * items and matched items / reference items (micro averages; an item matches a reference item when both are
 * equal after the hallucination metric's normalisation, each reference item matched at most once).
 */
import { bertScore } from "./metrics/bertscore/bertscore.js";
import type { EmbeddingProvider } from "./metrics/bertscore/provider.js";
import {
  bootstrapMean,
  bootstrapStatistic,
  type BootstrapOptions,
  type Interval,
} from "./metrics/bootstrap.js";
import { classificationReport } from "./metrics/classification.js";
import { hallucinationRate, normalizeForMatching } from "./metrics/hallucination.js";
import { multipleChoiceAccuracy } from "./metrics/multiple-choice.js";
import { rouge } from "./metrics/rouge/rouge.js";
import type { MetricName, TaskDefinition } from "../tasks/schema.js";

/** One multiple-choice example: the predicted choice (null: an unparsable generation) and the gold one. */
export interface ChoiceOutcome {
  goldIndex: number;
  predicted: number | null;
  /** Scored mode: one log-likelihood per choice. */
  logprobs?: number[];
  choices: string[];
}

/** One generated example. */
export interface TextOutcome {
  prediction: string;
  reference: string;
  /** Extraction: the source text and the items read from the prediction. */
  source?: string;
  items?: string[];
  referenceItems?: string[];
}

export interface TaskMetrics {
  metrics: Record<string, number>;
  ci: Record<string, [number, number]>;
  /** Per example: the value of each metric that has one (null where it is undefined for that example). */
  perExample: Record<string, number | null>[];
}

export interface TaskMetricOptions {
  lang: string;
  bootstrap?: BootstrapOptions;
  /** Embeddings for bertscore_f1; without it bertscore_f1 is left out. */
  bertscore?: EmbeddingProvider;
}

/** A prediction outside every label (a parse failure): wrong for every class, as scikit-learn counts it. */
const UNPARSED = "\u0000unparsed";

function put(out: TaskMetrics, name: string, iv: Interval): void {
  out.metrics[name] = iv.value;
  out.ci[name] = [iv.low, iv.high];
}

export function choiceMetrics(
  def: TaskDefinition,
  outcomes: readonly ChoiceOutcome[],
  o: TaskMetricOptions,
): TaskMetrics {
  const out: TaskMetrics = { metrics: {}, ci: {}, perExample: outcomes.map(() => ({})) };
  const wanted = new Set<MetricName>(def.metrics);
  const n = outcomes.length;
  if (
    def.labels &&
    ["macro_f1", "macro_precision", "macro_recall", "accuracy"].some((m) => wanted.has(m as MetricName))
  ) {
    const labels = def.labels;
    const pred = outcomes.map((x) => (x.predicted === null ? UNPARSED : labels[x.predicted]!));
    const gold = outcomes.map((x) => labels[x.goldIndex]!);
    const stat = (pick: (r: ReturnType<typeof classificationReport>) => number) => (idx: Int32Array) =>
      pick(
        classificationReport(
          Array.from(idx, (i) => pred[i]!),
          Array.from(idx, (i) => gold[i]!),
          { labels, zeroDivision: 0 },
        ),
      );
    const picks: [MetricName, (r: ReturnType<typeof classificationReport>) => number][] = [
      ["macro_f1", (r) => r.macro.f],
      ["macro_precision", (r) => r.macro.precision],
      ["macro_recall", (r) => r.macro.recall],
      ["accuracy", (r) => r.accuracy],
    ];
    for (const [name, pick] of picks)
      if (wanted.has(name)) put(out, name, bootstrapStatistic(n, stat(pick), o.bootstrap));
    if (wanted.has("accuracy"))
      outcomes.forEach((x, i) => (out.perExample[i]!.accuracy = x.predicted === x.goldIndex ? 1 : 0));
  }
  if (wanted.has("acc") || wanted.has("acc_norm")) {
    if (outcomes.every((x) => x.logprobs)) {
      const r = multipleChoiceAccuracy(
        outcomes.map((x) => ({ logprobs: x.logprobs!, choices: x.choices, gold: x.goldIndex })),
      );
      for (const name of ["acc", "acc_norm"] as const) {
        if (!wanted.has(name)) continue;
        const per = r.perItem[name]!;
        put(out, name, bootstrapMean(per, o.bootstrap));
        per.forEach((v, i) => (out.perExample[i]![name] = v));
      }
    } else if (wanted.has("acc")) {
      // Generated answers: acc is whether the parsed answer is the gold one; acc_norm needs log-likelihoods.
      const per = outcomes.map((x) => (x.predicted === x.goldIndex ? 1 : 0));
      put(out, "acc", bootstrapMean(per, o.bootstrap));
      per.forEach((v, i) => (out.perExample[i]!.acc = v));
    }
  }
  return out;
}

/** Σ numerators / Σ denominators over the examples at `idx` (0 when the denominators sum to 0). */
function ratioOfSums(num: readonly number[], den: readonly number[]) {
  return (idx: Int32Array): number => {
    let a = 0;
    let b = 0;
    for (const i of idx) {
      a += num[i]!;
      b += den[i]!;
    }
    return b === 0 ? 0 : a / b;
  };
}

/** How many of `items` match distinct `references` (normalised equality). */
function matchedItems(items: readonly string[], references: readonly string[]): number {
  const pool = new Map<string, number>();
  for (const r of references) {
    const k = normalizeForMatching(r, false);
    if (k !== "") pool.set(k, (pool.get(k) ?? 0) + 1);
  }
  let hits = 0;
  for (const it of items) {
    const k = normalizeForMatching(it, false);
    const left = pool.get(k) ?? 0;
    if (left > 0) {
      hits++;
      pool.set(k, left - 1);
    }
  }
  return hits;
}

export async function textMetrics(
  def: TaskDefinition,
  outcomes: readonly TextOutcome[],
  o: TaskMetricOptions,
): Promise<TaskMetrics> {
  const out: TaskMetrics = { metrics: {}, ci: {}, perExample: outcomes.map(() => ({})) };
  const wanted = def.metrics;
  const rougeTypes = wanted.filter((m) => m.startsWith("rouge"));
  const predictions = outcomes.map((x) => x.prediction.trim());
  const references = outcomes.map((x) => x.reference.trim());
  if (rougeTypes.length) {
    const r = await rouge(predictions, references, {
      mode: "multilingual",
      lang: o.lang,
      types: rougeTypes,
      bootstrap: o.bootstrap,
    });
    for (const t of rougeTypes) {
      const s = r.scores[t]!.fmeasure;
      out.metrics[t] = s.value;
      out.ci[t] = [s.low, s.high];
      r.perItem.forEach((p, i) => (out.perExample[i]![t] = p[t]!.fmeasure));
    }
  }
  if (wanted.includes("bertscore_f1") && o.bertscore) {
    const b = await bertScore(predictions, references, o.bertscore, { bootstrap: o.bootstrap });
    put(out, "bertscore_f1", b.f);
    b.perItem.forEach((p, i) => (out.perExample[i]!.bertscore_f1 = p.f));
  }
  if (wanted.includes("hallucination_rate")) {
    const h = hallucinationRate(outcomes.map((x) => ({ input: x.source ?? "", items: x.items ?? [] })));
    const num = h.perExample.map((e) => e.unsupported);
    const den = h.perExample.map((e) => e.items);
    put(out, "hallucination_rate", bootstrapStatistic(outcomes.length, ratioOfSums(num, den), o.bootstrap));
    h.perExample.forEach((e, i) => (out.perExample[i]!.hallucination_rate = e.rate));
  }
  const withRefs = outcomes.map((x, i) => i).filter((i) => outcomes[i]!.referenceItems !== undefined);
  if (withRefs.length > 0 && (wanted.includes("item_precision") || wanted.includes("item_recall"))) {
    const hit = withRefs.map((i) => matchedItems(outcomes[i]!.items ?? [], outcomes[i]!.referenceItems!));
    const predicted = withRefs.map((i) => (outcomes[i]!.items ?? []).length);
    const gold = withRefs.map((i) => outcomes[i]!.referenceItems!.length);
    const sets: [MetricName, number[]][] = [
      ["item_precision", predicted],
      ["item_recall", gold],
    ];
    for (const [name, den] of sets) {
      if (!wanted.includes(name)) continue;
      put(out, name, bootstrapStatistic(withRefs.length, ratioOfSums(hit, den), o.bootstrap));
      withRefs.forEach((ex, k) => (out.perExample[ex]![name] = den[k] === 0 ? null : hit[k]! / den[k]!));
    }
  }
  return out;
}
