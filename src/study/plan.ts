/**
 * The study as a graph of steps: prepare data → train adapters → merge → evaluate → analyse. Each step names
 * its kind, its parameters (JSON, part of the key), the external files it reads (content-hashed; their paths
 * are not part of the key, so moving the data folder re-runs nothing) and the upstream steps whose outputs it
 * reads. Its key = sha256(kind, parameters, content hashes of external files, keys of upstream steps):
 * upstream keys are themselves hashes of contents, so a key changes exactly when something the step reads
 * changes (as DVC's run cache, computed before anything runs so `--dry-run` is exact).
 *
 * Steps are listed in dependency order (every step after the steps it reads).
 */
import { MerglotError } from "../errors.js";
import { canonicalJson, sha256Path, sha256Text } from "./hash.js";
import type { BaseModel, Study, StudySearch, StudyTask } from "./schema.js";
import { PRIMARY_METRIC } from "./significance.js";

export type StepKind = "prepare" | "train" | "merge" | "evaluate" | "analyse" | "search";

/** Bump when a step's output format or semantics change: every key changes with it. */
export const STEP_FORMAT_VERSION = 1;

export interface Step {
  id: string;
  kind: StepKind;
  params: Record<string, unknown>;
  /** External files or folders read by the step: name → absolute path. */
  files: Record<string, string>;
  /** Upstream steps read by the step: name → step id. */
  deps: Record<string, string>;
  /** Not part of the key: names for messages (e.g. where the task file was read). */
  context?: Record<string, string>;
  /** For evaluate steps: what results.json reports the metrics under. */
  result?: { model: string; task: string; lang: string; variant: string };
}

export interface PlannedStep extends Step {
  key: string;
  /** Content hash of each external file, by name. */
  fileHashes: Record<string, string>;
}

/** The variant of a study's searched merge: `search/<optimizer>/<method>[+<method>…]`. */
export function searchVariant(ss: StudySearch): string {
  return `search/${ss.settings.optimizer.kind}/${ss.settings.methods.join("+")}`;
}

export function variantTag(set: { weight: number; density: number }): string {
  return `w${set.weight}-d${set.density}`;
}

/** Build the step graph of a study (no hashing, no I/O). */
export function buildSteps(study: Study): Step[] {
  const steps: Step[] = [];
  const add = (s: Step) => {
    steps.push(s);
    return s.id;
  };
  const multiBase = study.bases.length > 1;
  const t = study.training;
  const trainParams = {
    lora: {
      r: t.r,
      alpha: t.alpha,
      targets: t.target_modules === "all-linear" ? ["all-linear"] : t.target_modules,
    },
    train: {
      epochs: t.epochs,
      lr: t.lr,
      batchSize: t.batch,
      seqLen: t.seq_len,
      seed: t.seed,
      schedule: t.schedule,
      warmupRatio: t.warmup,
    },
    // A training command is part of what produces an adapter: editing it re-runs the trainings (device, env
    // and timeout are not: they change where and how long, not what).
    ...(trainCommandOf(study) !== undefined ? { command: trainCommandOf(study) } : {}),
  };
  const evalParams = { evaluation: study.evaluation };
  const sets = study.merges.sets;
  const methods = study.merges.methods;
  const mergeParams = (method: string, set: { weight: number; density: number }, weights: number[]) => ({
    method,
    weights: weights.map((w) => w * set.weight),
    density: set.density,
    seed: study.merges.seed,
    rank: study.merges.rank ?? null,
  });

  for (const base of study.bases) {
    // A command trains with the user's own stack (which reads whatever {base_model} names); evaluation of a
    // GGUF base goes through llama.cpp. Only the built-in trainer needs an HF folder.
    if (base.format === "gguf" && study.executors.train.kind === "local")
      throw new MerglotError(
        "study.executor",
        `${study.source}: base_model: ${base.path}: the local executor trains with the built-in engine, which needs an HF model folder (a GGUF base needs a command executor for training: executors.train)`,
      );
    const P = multiBase ? `${base.name}/` : "";
    const baseFiles = { base: base.path };
    const evaluate = (task: StudyTask, lang: string, variant: string, dataStep: string, adapters: string[]) =>
      add({
        id: `${P}evaluate/${task.name}/${lang}/${variant}`,
        kind: "evaluate",
        params: { ...evalParams, task: task.task.text, lang },
        context: { taskSource: task.task.source },
        files: baseFiles,
        deps: { data: dataStep, ...Object.fromEntries(adapters.map((a, i) => [`adapter${i}`, a])) },
        result: { model: base.name, task: task.name, lang, variant },
      });
    const mergeStep = (
      id: string,
      adapters: string[],
      method: string,
      set: (typeof sets)[number],
      w: number[],
    ) =>
      add({
        id,
        kind: "merge",
        params: mergeParams(method, set, w),
        files: {},
        deps: Object.fromEntries(adapters.map((a, i) => [`adapter${i}`, a])),
      });
    const allTaskAdapters: { task: StudyTask; adapters: Record<string, string> }[] = [];

    for (const task of study.tasks) {
      const prep: Record<string, string> = {};
      // The task decides how rows are read (its columns) and which fields they must have.
      const prepParams = {
        task: task.task.text,
        sizes: task.sizes,
        seed: study.training.seed,
      };
      for (const lang of study.languages) {
        // Data steps do not depend on the base model: shared by every base of a size ablation.
        const id = `prepare/${task.name}/${lang}`;
        prep[lang] = id;
        if (!steps.some((s) => s.id === id))
          add({
            id,
            kind: "prepare",
            params: { ...prepParams, lang },
            // the validation file is the search's alone: adding one changes no prepare, train or evaluate key
            files: { train: task.data[lang]!.train, test: task.data[lang]!.test },
            deps: {},
            context: { taskSource: task.task.source },
          });
      }
      const train = (id: string, data: string[], langs: string[]) =>
        add({
          id,
          kind: "train",
          params: { ...trainParams, task: task.task.text },
          context: { taskSource: task.task.source, taskName: task.name, languages: langs.join(",") },
          files: baseFiles,
          deps: Object.fromEntries(data.map((d, i) => [`data${i}`, d])),
        });
      const perLang: Record<string, string> = {};
      for (const lang of study.languages)
        perLang[lang] = train(`${P}train/${task.name}/${lang}`, [prep[lang]!], [lang]);
      allTaskAdapters.push({ task, adapters: perLang });
      const langAdapters = study.languages.map((l) => perLang[l]!);
      const ones = study.languages.map(() => 1);

      if (study.evaluation.base)
        for (const lang of study.languages) evaluate(task, lang, "base", prep[lang]!, []);
      if (study.baselines.includes("per_language"))
        for (const lang of study.languages)
          evaluate(task, lang, "per_language", prep[lang]!, [perLang[lang]!]);
      let combined: string | null = null;
      if (study.baselines.includes("combined") || study.ablations.update) {
        combined = train(
          `${P}train/${task.name}/combined`,
          study.languages.map((l) => prep[l]!),
          study.languages,
        );
        if (study.baselines.includes("combined"))
          for (const lang of study.languages) evaluate(task, lang, "combined", prep[lang]!, [combined]);
      }
      for (const method of methods)
        for (const set of sets) {
          const v = `merged/${method}/${variantTag(set)}`;
          const m = mergeStep(
            `${P}merge/${task.name}/${method}/${variantTag(set)}`,
            langAdapters,
            method,
            set,
            ones,
          );
          for (const lang of study.languages) evaluate(task, lang, v, prep[lang]!, [m]);
        }
      if (study.search?.tasks.includes(task.name)) {
        const ss = study.search;
        const v = searchVariant(ss);
        const id = `${P}${v.replace(/^search\//, `search/${task.name}/`)}`;
        add({
          id,
          kind: "search",
          params: {
            task: task.task.text,
            languages: study.languages,
            metric: ss.metric ?? PRIMARY_METRIC[task.name] ?? task.task.definition.metrics[0]!,
            settings: ss.settings,
          },
          // parallel candidates change no result, so `jobs` is not part of the key
          context: { taskSource: task.task.source, jobs: String(ss.jobs) },
          files: {
            ...baseFiles,
            ...Object.fromEntries(study.languages.map((l) => [`validation_${l}`, task.data[l]!.validation!])),
          },
          deps: Object.fromEntries(langAdapters.map((a, i) => [`adapter${i}`, a])),
        });
        for (const lang of study.languages) evaluate(task, lang, v, prep[lang]!, [id]);
      }
      for (const [group, langs] of Object.entries(study.ablations.clusters))
        for (const method of methods)
          for (const set of sets) {
            const v = `cluster/${group}/${method}/${variantTag(set)}`;
            const adapters = langs.map((l) => perLang[l]!);
            const m = mergeStep(
              `${P}merge/${task.name}/${v}`,
              adapters,
              method,
              set,
              langs.map(() => 1),
            );
            for (const lang of langs) evaluate(task, lang, v, prep[lang]!, [m]);
          }
      if (study.ablations.weighted) {
        const w = study.languages.map((l) => study.ablations.weighted![l]!);
        for (const method of methods)
          for (const set of sets) {
            const v = `weighted/${method}/${variantTag(set)}`;
            const m = mergeStep(`${P}merge/${task.name}/${v}`, langAdapters, method, set, w);
            for (const lang of study.languages) evaluate(task, lang, v, prep[lang]!, [m]);
          }
      }
      const upd = study.ablations.update;
      if (upd && upd.data[task.name] && combined) {
        const L = upd.lang;
        const prepU = add({
          id: `prepare/${task.name}/${L}/update`,
          kind: "prepare",
          params: { ...prepParams, lang: L },
          files: { train: task.data[L]!.train, test: task.data[L]!.test, extra: upd.data[task.name]! },
          deps: {},
          context: { taskSource: task.task.source },
        });
        const trainL = train(`${P}train/${task.name}/${L}/update`, [prepU], [L]);
        const dataU = study.languages.map((l) => (l === L ? prepU : prep[l]!));
        const combinedU = train(`${P}train/${task.name}/combined/update`, dataU, study.languages);
        const adaptersU = study.languages.map((l) => (l === L ? trainL : perLang[l]!));
        const V = `update/${L}`;
        evaluate(task, L, `${V}/per_language`, prep[L]!, [trainL]);
        for (const lang of study.languages) evaluate(task, lang, `${V}/combined`, prep[lang]!, [combinedU]);
        for (const method of methods)
          for (const set of sets) {
            const v = `${V}/merged/${method}/${variantTag(set)}`;
            const m = mergeStep(`${P}merge/${task.name}/${v}`, adaptersU, method, set, ones);
            for (const lang of study.languages) evaluate(task, lang, v, prep[lang]!, [m]);
          }
      }
      if (study.ablations.similarity)
        add({
          id: `${P}analyse/similarity/${task.name}`,
          kind: "analyse",
          params: { analysis: "similarity", languages: study.languages },
          files: {},
          deps: Object.fromEntries(study.languages.map((l, i) => [`adapter${i}`, perLang[l]!])),
        });
    }
    if (study.ablations.multitask && study.tasks.length > 1) {
      const adapters = allTaskAdapters.flatMap((x) => study.languages.map((l) => x.adapters[l]!));
      for (const method of methods)
        for (const set of sets) {
          const v = `multitask/${method}/${variantTag(set)}`;
          const m = mergeStep(
            `${P}merge/${v}`,
            adapters,
            method,
            set,
            adapters.map(() => 1),
          );
          for (const task of study.tasks)
            for (const lang of study.languages) evaluate(task, lang, v, `prepare/${task.name}/${lang}`, [m]);
        }
    }
  }
  return steps;
}

/** Key every step: content hashes of its files, then its kind, parameters and upstream keys. */
export function keySteps(steps: Step[]): PlannedStep[] {
  const keyOf = new Map<string, string>();
  return steps.map((s) => {
    const fileHashes = Object.fromEntries(Object.entries(s.files).map(([n, p]) => [n, sha256Path(p)]));
    const depKeys = Object.fromEntries(
      Object.entries(s.deps).map(([n, id]) => {
        const k = keyOf.get(id);
        if (!k) throw new Error(`internal: step ${s.id} reads ${id}, which is not planned before it`);
        return [n, k];
      }),
    );
    const key = sha256Text(
      canonicalJson({
        v: STEP_FORMAT_VERSION,
        kind: s.kind,
        params: s.params,
        files: fileHashes,
        deps: depKeys,
      }),
    );
    keyOf.set(s.id, key);
    return { ...s, key, fileHashes };
  });
}

export function planStudy(study: Study): PlannedStep[] {
  return keySteps(buildSteps(study));
}

export type { BaseModel };

/** The user's training command, run directly (`command`) or inside Slurm jobs (`slurm` with `command`). */
export function trainCommandOf(study: Pick<Study, "executors">): string | undefined {
  const t = study.executors.train;
  return t.kind === "command" || t.kind === "slurm" ? t.command : undefined;
}
