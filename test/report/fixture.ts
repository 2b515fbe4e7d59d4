/**
 * A hand-made results.json in the form `merglot study` writes: 3 languages, two tasks, both baselines, two merge
 * methods with two settings each, an update, a cluster, a multitask merge, costs and similarities. Values are
 * chosen by hand so the expected table entries can be worked out on paper (see the tests).
 */
import {
  normaliseResults,
  studyFileSchema,
  type StudyFile,
  type StudyResults,
} from "../../src/report/results.js";

const langs = ["en", "de", "ja"];

function rows(task: string, metric: string, variant: string, values: number[]) {
  return langs.map((lang, i) => ({ model: "tiny", task, lang, variant, metrics: { [metric]: values[i]! } }));
}

export function sampleStudyFile(): StudyFile {
  return {
    study: { name: "fixture <study> & co" },
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
      ...rows("sentiment", "macro_f1", "update/en/merged/ties/w1-d0.5", [0.79, 0.73, 0.66]),
      ...rows("sentiment", "macro_f1", "cluster/european/ties/w1-d0.5", [0.77, 0.71, 0.64]),
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
        model: "tiny",
        task: "sentiment",
        variant: "combined",
        trainings: ["train/sentiment/combined"],
        merges: [],
        sequentialWallS: 30,
        parallelWallS: 30,
        deviceS: 30,
        tokens: 1000,
        cost: 0.25,
        currency: "USD",
      },
      {
        model: "tiny",
        task: "sentiment",
        variant: "per_language",
        trainings: ["train/sentiment/en", "train/sentiment/de", "train/sentiment/ja"],
        merges: [],
        sequentialWallS: 33,
        parallelWallS: 12,
        deviceS: 33,
        tokens: 1000,
        cost: 0.275,
        currency: "USD",
      },
    ],
    update: {
      lang: "en",
      speedup: 5,
      costRatio: 5,
      entries: [
        {
          model: "tiny",
          task: "sentiment",
          variant: "merged/ties/w1-d0.5",
          update: { wallS: 6, deviceS: 6, cost: 0.05 },
          combined: { wallS: 30, deviceS: 30, cost: 0.25 },
          speedup: 5,
          costRatio: 5,
        },
      ],
    },
    similarity: {
      sentiment: {
        model: "tiny",
        task: "sentiment",
        languages: langs,
        modules: {
          all: [
            [1, 0.1, 0.05],
            [0.1, 1, 0.2],
            [0.05, 0.2, 1],
          ],
        },
      },
    },
  } as unknown as StudyFile;
}

export function sampleResults(): StudyResults {
  return normaliseResults(studyFileSchema.parse(sampleStudyFile()));
}
