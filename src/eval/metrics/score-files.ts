/**
 * Scoring prediction files against reference files: the library side of `merglot score`. One function per
 * family turns the JSONL records into per-item outputs plus a corpus statistic; the shared driver then adds
 * the bootstrap interval and, with a second prediction file, the paired significance test.
 *
 * File formats (JSONL, one object per line; an optional "id" on both sides must then match line by line):
 * | metric                                          | --pred line                   | --ref line                          |
 * |-------------------------------------------------|-------------------------------|-------------------------------------|
 * | accuracy, precision, recall, f1, classification | {"label": "pos"}              | {"label": "pos"}                    |
 * | acc, acc_norm, acc_bytes (multiple choice)      | {"logprobs": [-1.2, -0.3]}    | {"choices": ["yes", "no"], "gold": 1} |
 * | rouge, rouge1..rouge9, rougeL, rougeLsum        | {"text": "…"}                 | {"text": "…"}                       |
 * | bertscore                                       | {"text": "…"}                 | {"text": "…"} or {"texts": ["…"]}   |
 * | hallucination                                   | {"items": ["…", …]}           | {"input": "…"}                      |
 * Labels may be strings or numbers; "choices_logprobs" is accepted for "logprobs", "references" for "texts".
 */
import { MerglotError } from "../../errors.js";
import { bootstrapStatistic, mean, type BootstrapOptions, type Interval } from "./bootstrap.js";
import { classificationReport, type ClassificationReport, type Label } from "./classification.js";
import { hallucinationRate, type HallucinationOptions } from "./hallucination.js";
import {
  checkAligned,
  goldField,
  labelField,
  numberListField,
  readJsonl,
  stringField,
  stringListField,
  type JsonlRecord,
} from "./jsonl.js";
import { multipleChoiceAccuracy } from "./multiple-choice.js";
import { pairedComparison, type PairedMethod, type PairedResult } from "./paired.js";
import { DEFAULT_ROUGE_TYPES, rouge, type RougeMode } from "./rouge/rouge.js";
import { checkRougeType } from "./rouge/score.js";
import { bertScore } from "./bertscore/bertscore.js";
import { defaultModelFor, publishedBaseline } from "./bertscore/baselines.js";
import type { PRF } from "./bertscore/greedy.js";
import type { EmbeddingProvider } from "./bertscore/provider.js";

export const CLASSIFICATION_METRICS = ["accuracy", "precision", "recall", "f1", "classification"] as const;
export const CHOICE_METRICS = ["acc", "acc_norm", "acc_bytes"] as const;

export interface ScoreFilesOptions {
  metric: string;
  pred: string;
  ref: string;
  /** A second system's predictions: adds a paired test of pred against it. */
  compare?: string;
  lang?: string;
  bootstrap?: BootstrapOptions;
  pairedMethod?: PairedMethod;
  pairedSamples?: number;
  // classification
  labels?: Label[];
  average?: "macro" | "micro" | "weighted";
  zeroDivision?: number;
  // rouge
  tokenizer?: RougeMode;
  stem?: boolean;
  // bertscore
  provider?: () => Promise<EmbeddingProvider>;
  idf?: boolean;
  /** Rescale with the published baseline of this model (e.g. "roberta-large"); "default" = bert_score's default for --lang. */
  baselineModel?: string;
  baselineLayer?: number;
  baselineValues?: PRF;
  // hallucination
  hallucination?: HallucinationOptions;
}

export interface ScoreReport {
  metric: string;
  count: number;
  /** The number the metric is known by, with its bootstrap interval. */
  headline: { name: string } & Interval;
  /** Everything else the metric computes (per-class scores, other ROUGE types, …). */
  details: Record<string, unknown>;
  comparison?: PairedResult & { against: string };
}

/** Per-item outputs of one system and the corpus statistic over any subset of them. */
interface Prepared<O> {
  outputs: O[];
  statistic: (outputs: readonly O[]) => number;
  headlineName: string;
  details: Record<string, unknown>;
}

type Preparer = (pred: JsonlRecord[], ref: JsonlRecord[], o: ScoreFilesOptions) => Promise<Prepared<unknown>>;

function classificationPreparer(metric: string): Preparer {
  return async (pred, ref, o) => {
    const predictions = pred.map((r) => labelField(r, "label"));
    const references = ref.map((r) => labelField(r, "label"));
    // Labels given on the command line are strings; numeric data wants numeric labels.
    const numeric = references.every((x) => typeof x === "number");
    const given = o.labels?.map((l) =>
      numeric && typeof l === "string" && l.trim() !== "" && Number.isFinite(Number(l)) ? Number(l) : l,
    );
    const report = classificationReport(predictions, references, {
      labels: given,
      zeroDivision: o.zeroDivision,
    });
    const average = o.average ?? "macro";
    if (!["macro", "micro", "weighted"].includes(average)) {
      throw new MerglotError(
        "metrics.option",
        `score: --average must be macro, micro or weighted, got "${average}"`,
      );
    }
    // Resamples keep the full corpus's classes, so a class missing from a resample still counts (as 0).
    const labels = report.labels;
    const pick = (r: ClassificationReport): number => {
      if (metric === "accuracy") return r.accuracy;
      const avg = r[average];
      return metric === "precision" ? avg.precision : metric === "recall" ? avg.recall : avg.f;
    };
    const outputs = predictions.map((p, i) => ({ p, r: references[i] }));
    return {
      outputs,
      statistic: (outs) =>
        pick(
          classificationReport(
            (outs as typeof outputs).map((x) => x.p),
            (outs as typeof outputs).map((x) => x.r),
            { labels, zeroDivision: o.zeroDivision },
          ),
        ),
      headlineName:
        metric === "accuracy" ? "accuracy" : `${average} ${metric === "classification" ? "f1" : metric}`,
      details: { ...report },
    };
  };
}

const choicePreparer =
  (metric: string): Preparer =>
  async (pred, ref) => {
    const items = pred.map((p, i) => ({
      logprobs: numberListField(p, "logprobs", ["choices_logprobs"]),
      choices:
        metric === "acc" && !("choices" in ref[i].value) ? undefined : stringListField(ref[i], "choices"),
      gold: goldField(ref[i], "gold"),
    }));
    const result = multipleChoiceAccuracy(items);
    const key = metric as "acc" | "acc_norm" | "acc_bytes";
    return {
      outputs: result.perItem[key]!,
      statistic: (outs) => mean(outs as number[]),
      headlineName: metric,
      details: { acc: result.acc, acc_norm: result.acc_norm, acc_bytes: result.acc_bytes },
    };
  };

const rougePreparer =
  (metric: string): Preparer =>
  async (pred, ref, o) => {
    const types = metric === "rouge" ? [...DEFAULT_ROUGE_TYPES] : [metric];
    types.forEach(checkRougeType);
    const result = await rouge(
      pred.map((r) => stringField(r, "text")),
      ref.map((r) => stringField(r, "text")),
      { mode: o.tokenizer, lang: o.lang, types, stem: o.stem, bootstrap: o.bootstrap },
    );
    const main = types[0];
    return {
      outputs: result.perItem.map((s) => s[main].fmeasure),
      statistic: (outs) => mean(outs as number[]),
      headlineName: `${main} F`,
      details: { mode: result.mode, lang: result.lang, stem: result.stem, scores: result.scores },
    };
  };

const bertscorePreparer: Preparer = async (pred, ref, o) => {
  if (!o.provider)
    throw new MerglotError(
      "metrics.option",
      "bertscore: needs an embedding model (--model DIR for transformers.js, or --engine-model DIR)",
    );
  let baseline: PRF | null = o.baselineValues ?? null;
  if (!baseline && o.baselineModel) {
    if (!o.lang)
      throw new MerglotError("metrics.option", "bertscore: rescaling with a published baseline needs --lang");
    const model = o.baselineModel === "default" ? defaultModelFor(o.lang).model : o.baselineModel;
    baseline = publishedBaseline(model, o.lang, o.baselineLayer);
  }
  const references = ref.map((r) =>
    "texts" in r.value || "references" in r.value
      ? stringListField(r, "texts", ["references"])
      : stringField(r, "text"),
  );
  const result = await bertScore(
    pred.map((r) => stringField(r, "text")),
    references,
    await o.provider(),
    { idf: o.idf, baseline, bootstrap: o.bootstrap },
  );
  return {
    outputs: result.perItem.map((s) => s.f),
    statistic: (outs) => mean(outs as number[]),
    headlineName: "bertscore F",
    details: {
      precision: result.precision,
      recall: result.recall,
      f: result.f,
      idf: result.idf,
      rescaled: result.rescaled,
      baseline,
      provider: result.provider,
    },
  };
};

const hallucinationPreparer: Preparer = async (pred, ref, o) => {
  const examples = pred.map((p, i) => ({
    items: stringListField(p, "items"),
    input: stringField(ref[i], "input"),
  }));
  const result = hallucinationRate(examples, o.hallucination);
  return {
    outputs: result.perExample.map((e) => ({ n: e.items, u: e.unsupported })),
    statistic: (outs) => {
      let n = 0;
      let u = 0;
      for (const x of outs as { n: number; u: number }[]) {
        n += x.n;
        u += x.u;
      }
      return n === 0 ? 0 : u / n;
    },
    headlineName: "hallucination rate",
    details: {
      items: result.items,
      unsupported: result.unsupported,
      emptyItems: result.emptyItems,
      macroRate: result.macroRate,
    },
  };
};

function preparerFor(metric: string): Preparer {
  if ((CLASSIFICATION_METRICS as readonly string[]).includes(metric)) return classificationPreparer(metric);
  if ((CHOICE_METRICS as readonly string[]).includes(metric)) return choicePreparer(metric);
  if (metric === "rouge" || metric.startsWith("rouge")) return rougePreparer(metric);
  if (metric === "bertscore") return bertscorePreparer;
  if (metric === "hallucination") return hallucinationPreparer;
  throw new MerglotError(
    "metrics.unknown",
    `score: unknown metric "${metric}" (known: ${[...CLASSIFICATION_METRICS, ...CHOICE_METRICS, "rouge", "rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore", "hallucination"].join(", ")})`,
  );
}

export async function scoreFiles(options: ScoreFilesOptions): Promise<ScoreReport> {
  const prepare = preparerFor(options.metric);
  const predRecords = readJsonl(options.pred);
  const refRecords = readJsonl(options.ref);
  checkAligned(predRecords, refRecords);
  const a = await prepare(predRecords, refRecords, options);
  const n = a.outputs.length;
  const interval = bootstrapStatistic(
    n,
    (idx) => a.statistic(Array.from(idx, (i) => a.outputs[i])),
    options.bootstrap,
  );
  const report: ScoreReport = {
    metric: options.metric,
    count: n,
    headline: { name: a.headlineName, ...interval },
    details: a.details,
  };
  if (options.compare) {
    const compareRecords = readJsonl(options.compare);
    checkAligned(compareRecords, refRecords);
    const b = await prepare(compareRecords, refRecords, options);
    report.comparison = {
      against: options.compare,
      ...pairedComparison(a.outputs, b.outputs, a.statistic, {
        method: options.pairedMethod,
        samples: options.pairedSamples,
        seed: options.bootstrap?.seed,
        confidence: options.bootstrap?.confidence,
      }),
    };
  }
  return report;
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(4) : String(x));

/** A short human-readable summary of a report. */
export function formatReport(r: ScoreReport): string {
  const h = r.headline;
  const lines = [
    `${r.metric}: ${h.name} = ${fmt(h.value)}  [${fmt(h.low)}, ${fmt(h.high)}] (${Math.round(h.confidence * 100)}% bootstrap CI, n = ${r.count})`,
  ];
  const d = r.details as Record<string, unknown>;
  if (Array.isArray(d.perClass)) {
    const rep = d as unknown as ClassificationReport;
    lines.push(`  accuracy ${fmt(rep.accuracy)}`);
    for (const c of rep.perClass) {
      lines.push(
        `  ${String(c.label)}: P ${fmt(c.precision)}  R ${fmt(c.recall)}  F1 ${fmt(c.f)}  support ${c.support}`,
      );
    }
    for (const k of ["macro", "micro", "weighted"] as const) {
      lines.push(`  ${k}: P ${fmt(rep[k].precision)}  R ${fmt(rep[k].recall)}  F1 ${fmt(rep[k].f)}`);
    }
    if (rep.strayPredictions > 0)
      lines.push(`  ${rep.strayPredictions} predictions outside the label set (counted wrong)`);
  }
  if (d.scores && typeof d.scores === "object") {
    for (const [type, s] of Object.entries(
      d.scores as Record<string, { precision: Interval; recall: Interval; fmeasure: Interval }>,
    )) {
      lines.push(
        `  ${type}: P ${fmt(s.precision.value)}  R ${fmt(s.recall.value)}  F ${fmt(s.fmeasure.value)}  [${fmt(s.fmeasure.low)}, ${fmt(s.fmeasure.high)}]`,
      );
    }
  }
  if (r.metric === "bertscore") {
    const p = d.precision as Interval;
    const rc = d.recall as Interval;
    lines.push(
      `  P ${fmt(p.value)}  R ${fmt(rc.value)}  (idf ${d.idf ? "on" : "off"}, ${d.rescaled ? "rescaled" : "raw"}; ${String(d.provider)})`,
    );
  }
  if (r.metric === "hallucination") {
    lines.push(
      `  ${String(d.unsupported)} of ${String(d.items)} items not found in the input (${String(d.emptyItems)} empty items skipped)`,
    );
  }
  if (CHOICE_METRICS.includes(r.metric as (typeof CHOICE_METRICS)[number])) {
    lines.push(
      `  acc ${fmt(d.acc as number)}${d.acc_norm !== undefined ? `  acc_norm ${fmt(d.acc_norm as number)}  acc_bytes ${fmt(d.acc_bytes as number)}` : ""}`,
    );
  }
  if (r.comparison) {
    const c = r.comparison;
    lines.push(
      `  vs ${c.against}: ${fmt(c.a)} − ${fmt(c.b)} = ${fmt(c.delta)}  [${fmt(c.low)}, ${fmt(c.high)}], ` +
        `p = ${c.pValue.toPrecision(3)} (paired ${c.method}, ${c.samples} samples): ` +
        (c.significant ? "significant" : "not significant") +
        ` at ${fmt(1 - c.confidence)}`,
    );
  }
  return lines.join("\n");
}
