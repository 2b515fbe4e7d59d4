/**
 * A hand-made results.json: 3 languages, two tasks, both baselines, two merge methods with two settings each,
 * an update, a cluster, a multitask merge, costs and similarities. Values are chosen by hand so the expected
 * table entries can be worked out on paper (see the tests).
 */
import type { StudyResults } from "../../src/report/results.js";

const langs = ["en", "de", "ja"];

function rows(task: string, metric: string, variant: string, values: number[]) {
  return langs.map((lang, i) => ({ task, lang, variant, metrics: { [metric]: values[i]! } }));
}

export function sampleResults(): StudyResults {
  return {
    study: "fixture <study> & co",
    languages: langs,
    tasks: ["sentiment", "extraction"],
    results: [
      ...rows("sentiment", "macro_f1", "combined", [0.8, 0.7, 0.6]),
      ...rows("sentiment", "macro_f1", "per_language", [0.82, 0.66, 0.61]),
      // ties: w1-d1 mean 0.7, w1-d0.5 mean 0.71 → best is d0.5
      ...rows("sentiment", "macro_f1", "merged/ties/w1-d1", [0.75, 0.7, 0.65]),
      ...rows("sentiment", "macro_f1", "merged/ties/w1-d0.5", [0.76, 0.72, 0.65]),
      // knots_ties: w1-d1 mean 0.73 (best), w1-d0.5 mean 0.6
      ...rows("sentiment", "macro_f1", "merged/knots_ties/w1-d1", [0.74, 0.75, 0.7]),
      ...rows("sentiment", "macro_f1", "merged/knots_ties/w1-d0.5", [0.6, 0.6, 0.6]),
      ...rows("sentiment", "macro_f1", "update/en/ties/w1-d0.5", [0.79, 0.73, 0.66]),
      ...rows("sentiment", "macro_f1", "cluster/european+east_asian/ties/w1-d0.5", [0.77, 0.71, 0.64]),
      ...rows("sentiment", "macro_f1", "multitask/ties/w1-d1", [0.6, 0.5, 0.4]),
      // extraction: lower is better
      ...rows("extraction", "hallucination_rate", "combined", [0.2, 0.3, 0.4]),
      ...rows("extraction", "hallucination_rate", "per_language", [0.25, 0.2, 0.5]),
      ...rows("extraction", "hallucination_rate", "merged/ties/w1-d1", [0.1, 0.3, 0.35]),
      ...rows("extraction", "hallucination_rate", "merged/ties/w1-d0.5", [0.3, 0.3, 0.3]),
      ...rows("extraction", "hallucination_rate", "multitask/ties/w1-d1", [0.5, 0.5, 0.5]),
    ].map((r) =>
      r.variant === "merged/knots_ties/w1-d1" && r.lang === "de"
        ? { ...r, vs_combined: { metric: "macro_f1", delta: 0.05, p: 0.01, significant: true } }
        : r,
    ),
    costs: [
      {
        variant: "combined",
        task: "sentiment",
        trainings: 1,
        sequential_s: 30,
        parallel_s: 30,
        device_s: 30,
        cost: 0.25,
      },
      {
        variant: "per_language",
        task: "sentiment",
        trainings: 3,
        sequential_s: 33,
        parallel_s: 12,
        device_s: 33,
        cost: 0.275,
      },
    ],
    update: [
      {
        task: "sentiment",
        lang: "en",
        merge_path_s: 6,
        merge_path_cost: 0.05,
        combined_path_s: 30,
        combined_path_cost: 0.25,
        speedup: 5,
        cost_ratio: 5,
      },
    ],
    similarity: {
      sentiment: {
        languages: langs,
        by_kind: {
          all: [
            [1, 0.1, 0.05],
            [0.1, 1, 0.2],
            [0.05, 0.2, 1],
          ],
        },
      },
    },
    currency: "USD",
  };
}
