/**
 * study.yaml: what a user writes to run the whole experiment (DESIGN.md "study"). Validation is strict like
 * recipes: an unknown key is an error naming its field path, because a typo must never silently change a
 * study. `loadStudy` returns the study with every default filled in and every path resolved against the
 * study file's folder; cross-field checks (languages, tasks, data, clusters, methods) name the field too.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, extname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { isMerglotError, MerglotError } from "../errors.js";
import { firstIssue } from "../yaml-input.js";
import { readStudyDocument } from "./extends.js";
import { METHOD_NAMES, resolveMethod } from "../merge/methods.js";
import { loadTask, type Task } from "../tasks/load.js";
import { checkCommandTemplate } from "./command.js";
import { filtersProblem, searchSettings, studySearchSchema, type SearchSettings } from "../search/spec.js";
import { LINEAR_KINDS, linearModuleName } from "../engine/model.js";

/** The seed study's languages and training values (r = α = 64, lr 2e-5, batch 8). */
export const DEFAULT_LANGUAGES = ["en", "de", "fr", "ja", "zh"] as const;
export const DEFAULT_METHODS = ["ties", "knots_ties", "dare_ties", "knots_dare_ties"] as const;
export const DEFAULT_MERGE_SETS = [
  { weight: 1, density: 1 },
  { weight: 1, density: 0.5 },
] as const;

const positiveInt = z.number().int().positive();
const density = z.number().refine((x) => x > 0 && x <= 1, { message: "density must lie in (0, 1]" });
const finite = z.number().refine(Number.isFinite, { message: "must be a finite number" });

/** Per split: a data file (.jsonl/.csv/.tsv/.parquet) or a dataset folder, as `merglot eval --data` takes. */
const splitFiles = z.strictObject({
  train: z.string().min(1),
  test: z.string().min(1),
  /** Held-out rows the merge search scores candidates on (never the test rows); only the search reads it. */
  validation: z.string().min(1).optional(),
});

const taskSchema = z.strictObject({
  /** A custom task file (YAML); without it the task's key must be a built-in task name. */
  task_file: z.string().min(1).optional(),
  /** Per language: canonical example JSONL files, one per split. */
  data: z.record(z.string(), splitFiles),
  /** Examples taken from each split (the data loader's seeded selection, seed = training.seed); default: all. */
  sizes: z.strictObject({ train: positiveInt.optional(), test: positiveInt.optional() }).optional(),
});

const trainingSchema = z.strictObject({
  r: positiveInt.default(64),
  alpha: z.number().positive().default(64),
  lr: z.number().positive().default(2e-5),
  batch: positiveInt.default(8),
  seq_len: positiveInt.default(512),
  epochs: positiveInt.default(1),
  target_modules: z.union([z.literal("all-linear"), z.array(z.string().min(1)).min(1)]).default("all-linear"),
  seed: z.number().int().nonnegative().default(0),
  schedule: z.enum(["linear", "cosine", "constant"]).default("linear"),
  warmup: z.number().min(0).max(1).default(0),
});

/** The kinds of step a study has (plan.ts builds them); `executors` may choose an executor for each. */
export const STEP_KINDS = ["prepare", "train", "merge", "evaluate", "analyse", "search"] as const;

const localExecutorSchema = z.strictObject({
  kind: z.literal("local"),
  /** Name of the device for the cost model (default "cpu"). */
  device: z.string().min(1).default("cpu"),
  /** Matrix-kernel threads per step (default: the cores divided among --jobs). */
  threads: positiveInt.optional(),
});

/** A user's training command (e.g. TRL + PEFT), run as a subprocess: see command.ts for the placeholders. */
const commandExecutorSchema = z.strictObject({
  kind: z.literal("command"),
  /** A /bin/sh command line with {placeholders}; merglot shell-quotes every value it puts in. */
  command: z.string().min(1),
  /** Name of the device for the cost model (default: none, so the price of the executor kind applies). */
  device: z.string().min(1).optional(),
  /** Extra environment variables for the command. */
  env: z.record(z.string(), z.string()).optional(),
  /** Seconds before the command is stopped and the step fails (default: no limit). */
  timeout: z.number().positive().optional(),
});

/** A Slurm time limit as sbatch's --time takes it (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS). */
const slurmTime = z.string().regex(/^(UNLIMITED|INFINITE|(\d+-)?\d+(:\d{1,2}){0,2})$/, {
  message: "a Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
});

/** One extra #SBATCH line: an option, on one line (a newline would end the script's header). */
const sbatchLine = z
  .string()
  // eslint-disable-next-line no-control-regex -- a line break would end the script's #SBATCH header
  .regex(/^-[^\u0000-\u001f\u007f]*$/, {
    message: "one sbatch option per item, starting with - (no line breaks)",
  });

/**
 * Each step a Slurm job running merglot's own step on a compute node (slurm/ in the study folder); the
 * resource fields become #SBATCH lines.
 */
const slurmExecutorSchema = z.strictObject({
  kind: z.literal("slurm"),
  partition: z
    .string()
    .regex(/^[A-Za-z0-9_.,-]+$/, { message: "a Slurm partition name (letters, digits, _ . , -)" })
    .optional(),
  /** GPUs per job (--gpus); device-seconds = wall seconds × GPUs. */
  gpus: z.number().int().nonnegative().optional(),
  time: slurmTime.optional(),
  /** Memory per job (--mem): a number of MB or with a K/M/G/T suffix. */
  mem: z
    .string()
    .regex(/^\d+[KMGT]?$/i, { message: "memory as sbatch --mem takes it, e.g. 64G or 16000" })
    .optional(),
  /** CPUs per job (--cpus-per-task); also the step's matrix-kernel threads. */
  cpus: positiveInt.optional(),
  /** At most this many tasks of a job array run at once (the `%` of --array). */
  array_limit: positiveInt.optional(),
  /** Extra #SBATCH lines, e.g. ["--account=myproj", "--qos=short"]. */
  sbatch: z.array(sbatchLine).default([]),
  /** Name of the device for the cost model (default "gpu" when gpus > 0, else "cpu"). */
  device: z.string().min(1).optional(),
  /** A user's command run inside the job (train only; the command executor's template). */
  command: z.string().min(1).optional(),
});

/**
 * Where steps run: `local` (this process, merglot's own library), `command` (a user's training command) or
 * `slurm` (Slurm jobs). A new executor adds a member to this union and an entry in executors.ts's
 * `executorsFor`, nothing else.
 */
const executorSchema = z.discriminatedUnion("kind", [
  localExecutorSchema,
  commandExecutorSchema,
  slurmExecutorSchema,
]);

/** Per step kind, an executor that replaces the study's default `executor` for that kind. */
const executorsSchema = z.strictObject(
  Object.fromEntries(STEP_KINDS.map((k) => [k, executorSchema.optional()])) as Record<
    (typeof STEP_KINDS)[number],
    z.ZodOptional<typeof executorSchema>
  >,
);

export type ExecutorSetting = z.infer<typeof executorSchema>;
export type SlurmSettings = Extract<ExecutorSetting, { kind: "slurm" }>;

/** The device a step kind's executor records for the cost model: its `device`, else a default by kind. */
export function deviceOf(setting: ExecutorSetting): string {
  if (setting.device) return setting.device;
  if (setting.kind === "slurm") return (setting.gpus ?? 0) > 0 ? "gpu" : "cpu";
  return setting.kind;
}

const mergeSet = z.strictObject({ weight: finite.default(1), density: density.default(1) });

const mergesSchema = z.strictObject({
  methods: z
    .array(z.string())
    .min(1)
    .default([...DEFAULT_METHODS]),
  sets: z
    .array(mergeSet)
    .min(1)
    .default(DEFAULT_MERGE_SETS.map((s) => ({ ...s }))),
  seed: z.number().int().nonnegative().default(0),
  /** Output rank of dense merges (see the recipe's output.rank); default: the recipe's default. */
  rank: z.union([z.literal("exact"), z.literal("full"), positiveInt]).optional(),
});

const ablationsSchema = z.strictObject({
  /** One language gets extra data: retrain its adapter, re-merge, re-evaluate; also retrain combined. */
  update: z
    .strictObject({ lang: z.string().min(1), data: z.record(z.string(), z.string().min(1)) })
    .optional(),
  /** Named language groups, each merged on its own. */
  clusters: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  /** All task × language adapters merged into one, evaluated on every task. */
  multitask: z.boolean().optional(),
  /** Per-language merge weights (the seed's case study). */
  weighted: z.strictObject({ weights: z.record(z.string(), finite) }).optional(),
  /** Cosine similarity of the language vectors, per task and module kind. */
  similarity: z.boolean().optional(),
});

const evaluationSchema = z.strictObject({
  bootstrap: positiveInt.default(1000),
  seed: z.number().int().nonnegative().default(0),
  confidence: z.number().gt(0).lt(1).default(0.95),
  /** Also evaluate the base model without adapter (chance level). */
  base: z.boolean().default(true),
  /**
   * llama.cpp backend for GGUF base models (`merglot eval --gpu`): off (CPU), auto, cuda, vulkan. No default,
   * so that a study without it keeps its step keys; when set it is part of every evaluation's key (a GPU's
   * arithmetic differs from the CPU's).
   */
  gpu: z.enum(["auto", "cuda", "vulkan", "off"]).optional(),
});

const studySchema = z.strictObject({
  name: z.string().min(1).optional(),
  base_model: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  languages: z
    .array(z.string().min(1))
    .min(1)
    .default([...DEFAULT_LANGUAGES]),
  tasks: z.record(z.string(), taskSchema),
  training: trainingSchema.default(trainingSchema.parse({})),
  executor: executorSchema.default({ kind: "local", device: "cpu" }),
  executors: executorsSchema.optional(),
  baselines: z.array(z.enum(["combined", "per_language"])).default(["combined", "per_language"]),
  merges: mergesSchema.default(mergesSchema.parse({})),
  ablations: ablationsSchema.default({}),
  evaluation: evaluationSchema.default(evaluationSchema.parse({})),
  /** Merge search per task on the validation split (src/search/); its best merge is one more variant. */
  search: studySearchSchema.optional(),
  /** Price per device-hour, by executor kind or device name (`local`, `cpu`, `a100`, …). */
  costs: z
    .strictObject({
      currency: z.string().min(1).default("USD"),
      per_device_hour: z.record(z.string(), z.number().nonnegative()).default({}),
    })
    .default({ currency: "USD", per_device_hour: {} }),
});

export type StudyYaml = z.infer<typeof studySchema>;

export interface StudyTask {
  name: string;
  /** The task (built-in or the user's file); its YAML text is part of every step key that uses it. */
  task: Task;
  data: Record<string, { train: string; test: string; validation?: string }>;
  sizes: { train: number | null; test: number | null };
}

export interface BaseModel {
  /** Short name used in step ids and results (`model` field) when the study has several. */
  name: string;
  path: string;
  format: "hf" | "gguf";
}

/** A validated study with defaults filled in and paths absolute. */
export interface Study {
  source: string;
  name: string;
  bases: BaseModel[];
  languages: string[];
  tasks: StudyTask[];
  training: StudyYaml["training"];
  /** The default executor (`executor`). */
  executor: ExecutorSetting;
  /** The executor of each step kind: `executors.<kind>` where given, else `executor`. */
  executors: Record<(typeof STEP_KINDS)[number], ExecutorSetting>;
  baselines: StudyYaml["baselines"];
  merges: StudyYaml["merges"];
  ablations: {
    update: { lang: string; data: Record<string, string> } | null;
    clusters: Record<string, string[]>;
    multitask: boolean;
    weighted: Record<string, number> | null;
    similarity: boolean;
  };
  evaluation: StudyYaml["evaluation"];
  costs: StudyYaml["costs"];
  search: StudySearch | null;
}

/** A study's merge search: the SEARCH.yaml settings; the inputs come from the study. */
export interface StudySearch {
  tasks: string[];
  settings: SearchSettings;
  /** undefined: each task's primary metric. */
  metric?: string;
  jobs: number;
}

function fail(source: string, field: string, msg: string): never {
  throw new MerglotError("study.field", `${source}: ${field}: ${msg}`);
}

const languageNames = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });

/** A language code ICU knows (en, de, pt-BR, …): typos like "eng" or "dee" are refused. */
export function isKnownLanguage(code: string): boolean {
  if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(code)) return false;
  try {
    const name = languageNames.of(code);
    return name !== undefined && name !== code;
  } catch {
    return false;
  }
}

/** Validate a parsed study object; `baseDir` resolves relative paths. */
/**
 * The study of a parsed study document. `source` is its file (relative paths, the default name, the run's working
 * folder); `label` names it in messages (for a study that extends others, the files that made it).
 */
export function parseStudy(obj: unknown, source: string, baseDir: string, label = source): Study {
  const parsed = studySchema.safeParse(obj);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    fail(label, field, message);
  }
  const s = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

  const languages = s.languages;
  languages.forEach((l, i) => {
    if (!isKnownLanguage(l)) fail(label, `languages[${i}]`, `unknown language code "${l}"`);
  });
  if (new Set(languages).size !== languages.length) fail(label, "languages", "a language is listed twice");

  const baseList = Array.isArray(s.base_model) ? s.base_model : [s.base_model];
  const bases: BaseModel[] = baseList.map((p, i) => {
    const path = abs(p);
    const field = Array.isArray(s.base_model) ? `base_model[${i}]` : "base_model";
    if (!existsSync(path)) fail(label, field, `${p}: no such model folder or GGUF file`);
    const format = path.toLowerCase().endsWith(".gguf") ? "gguf" : "hf";
    if (format === "hf" && !existsSync(resolve(path, "config.json")))
      fail(label, field, `${p}: not an HF model folder (no config.json) and not a .gguf file`);
    return { name: basename(path, extname(path)), path, format };
  });
  if (new Set(bases.map((b) => b.name)).size !== bases.length)
    fail(label, "base_model", "two base models have the same folder name; rename one");
  const hfBase = bases.find((b) => b.format === "hf");
  if ((s.evaluation.gpu ?? "off") !== "off" && hfBase)
    fail(
      label,
      "evaluation.gpu",
      `applies to GGUF base models (the llama.cpp runner); ${hfBase.name} is an HF folder, which the engine evaluates on the CPU`,
    );

  const taskNames = Object.keys(s.tasks);
  if (taskNames.length === 0) fail(label, "tasks", "no task: give at least one");
  const tasks: StudyTask[] = taskNames.map((name) => {
    const t = s.tasks[name]!;
    let task: Task;
    try {
      task = loadTask(t.task_file !== undefined ? abs(t.task_file) : name);
    } catch (e) {
      if (!isMerglotError(e)) throw e;
      const field = t.task_file !== undefined ? `tasks.${name}.task_file` : `tasks.${name}`;
      fail(label, field, e.message);
    }
    for (const lang of languages)
      if (!task.definition.prompts[lang])
        fail(
          label,
          t.task_file !== undefined ? `tasks.${name}.task_file` : `tasks.${name}`,
          `task ${task.definition.task} has no prompt for language "${lang}" (copy ${task.source}, add prompts.${lang} and give the copy as task_file)`,
        );
    for (const lang of Object.keys(t.data)) {
      if (!languages.includes(lang))
        fail(label, `tasks.${name}.data.${lang}`, `language "${lang}" is not in the study's languages`);
    }
    const data: StudyTask["data"] = {};
    for (const lang of languages) {
      const files = t.data[lang];
      if (!files) fail(label, `tasks.${name}.data`, `no data for language "${lang}"`);
      for (const split of ["train", "test"] as const) {
        const p = abs(files[split]);
        if (!existsSync(p))
          fail(label, `tasks.${name}.data.${lang}.${split}`, `${files[split]}: no such file or folder`);
        data[lang] = { ...data[lang]!, [split]: p };
      }
      if (files.validation !== undefined) {
        const p = abs(files.validation);
        if (!existsSync(p))
          fail(label, `tasks.${name}.data.${lang}.validation`, `${files.validation}: no such file or folder`);
        data[lang]!.validation = p;
      }
    }
    return {
      name,
      task,
      data,
      sizes: { train: t.sizes?.train ?? null, test: t.sizes?.test ?? null },
    };
  });

  s.merges.methods.forEach((m, i) => {
    const r = resolveMethod(m);
    if (!r)
      fail(label, `merges.methods[${i}]`, `unknown merge method "${m}" (known: ${METHOD_NAMES.join(", ")})`);
    // SLERP / NuSLERP merge exactly two adapters: the study merges all its languages (and each cluster) at once
    const need = r.method.exactInputs;
    const groups = [languages, ...Object.values(s.ablations.clusters ?? {})];
    if (need !== undefined && (groups.some((g) => g.length !== need) || s.ablations.multitask))
      fail(
        label,
        `merges.methods[${i}]`,
        `"${m}" merges exactly ${need} adapters, but the study merges ${languages.length} languages` +
          `${groups.length > 1 || s.ablations.multitask ? " (or clusters / tasks of another size)" : ""}; use multislerp or karcher`,
      );
  });

  const a = s.ablations;
  let update: Study["ablations"]["update"] = null;
  if (a.update) {
    if (!languages.includes(a.update.lang))
      fail(label, "ablations.update.lang", `language "${a.update.lang}" is not in the study's languages`);
    const data: Record<string, string> = {};
    for (const [task, p] of Object.entries(a.update.data)) {
      if (!taskNames.includes(task)) fail(label, `ablations.update.data.${task}`, `unknown task "${task}"`);
      if (!existsSync(abs(p))) fail(label, `ablations.update.data.${task}`, `${p}: file not found`);
      data[task] = abs(p);
    }
    if (Object.keys(data).length === 0)
      fail(label, "ablations.update.data", "no extra data: give one file per task");
    update = { lang: a.update.lang, data };
  }
  const clusters = a.clusters ?? {};
  for (const [group, langs] of Object.entries(clusters)) {
    if (!/^[A-Za-z0-9_-]+$/.test(group))
      fail(label, `ablations.clusters.${group}`, "group names may use letters, digits, _ and - only");
    langs.forEach((l, i) => {
      if (!languages.includes(l))
        fail(label, `ablations.clusters.${group}[${i}]`, `language "${l}" is not in the study's languages`);
    });
  }
  let weighted: Record<string, number> | null = null;
  if (a.weighted) {
    for (const l of Object.keys(a.weighted.weights))
      if (!languages.includes(l))
        fail(label, `ablations.weighted.weights.${l}`, `language "${l}" is not in the study's languages`);
    weighted = Object.fromEntries(languages.map((l) => [l, a.weighted!.weights[l] ?? 1]));
  }
  if (a.multitask && tasks.length < 2)
    fail(label, "ablations.multitask", "merging tasks needs at least two tasks in the study");
  if (s.baselines.length === 0 && s.merges.methods.length === 0)
    fail(label, "baselines", "nothing to evaluate: no baseline and no merge");

  const executors = resolveExecutors(s, label);
  let search: StudySearch | null = null;
  if (s.search) {
    const searched = s.search.tasks ?? taskNames;
    searched.forEach((t, i) => {
      if (!taskNames.includes(t)) fail(label, `search.tasks[${i}]`, `unknown task "${t}"`);
      const task = tasks.find((x) => x.name === t)!;
      for (const lang of languages)
        if (task.data[lang]!.validation === undefined)
          fail(
            label,
            `tasks.${t}.data.${lang}.validation`,
            "the search scores candidates on a validation split, never on test: give a validation file",
          );
    });
    let settings: SearchSettings;
    try {
      settings = searchSettings(s.search, label, "search.");
    } catch (e) {
      if (!isMerglotError(e)) throw e;
      throw new MerglotError("study.field", e.message);
    }
    const hasRange = [settings.weight, settings.density, settings.lambda].some((v) => typeof v !== "number");
    if (!hasRange)
      fail(
        label,
        "search.parameters",
        "nothing to search; give weight, density or lambda a {min, max} range",
      );
    checkSearchFilters(settings, bases, s.training.target_modules, label);
    search = { tasks: searched, settings, metric: s.search.objective.metric, jobs: s.search.jobs ?? 1 };
  }

  const name = s.name ?? basename(source, extname(source));
  return {
    source,
    name,
    bases,
    languages,
    tasks,
    training: s.training,
    executor: s.executor,
    executors,
    baselines: s.baselines,
    merges: s.merges,
    ablations: {
      update,
      clusters,
      multitask: a.multitask ?? false,
      weighted,
      similarity: a.similarity ?? false,
    },
    evaluation: s.evaluation,
    costs: s.costs,
    search,
  };
}

/**
 * The executor of every step kind. A `command` runs training only (it must write a PEFT folder), so it is
 * refused for the other kinds; its template's placeholders are checked now, not when the first step runs.
 */
/**
 * Module filters of the search, checked before anything is trained against the modules the study's adapters
 * will have (training.target_modules on each HF base model's layers, named as merglot's trainer and PEFT name
 * them); the search step checks the trained adapters themselves again. A GGUF base, or a config without
 * num_hidden_layers, is left to that later check.
 */
function checkSearchFilters(
  settings: SearchSettings,
  bases: BaseModel[],
  targets: "all-linear" | string[],
  label: string,
): void {
  const kinds =
    targets === "all-linear" ? [...LINEAR_KINDS] : LINEAR_KINDS.filter((k) => targets.includes(k));
  for (const [name, v] of [
    ["weight", settings.weight],
    ["density", settings.density],
  ] as const) {
    if (typeof v === "number" || !v.filters) continue;
    for (const base of bases) {
      if (base.format !== "hf") continue;
      let layers: unknown;
      try {
        layers = (
          JSON.parse(readFileSync(resolve(base.path, "config.json"), "utf8")) as Record<string, unknown>
        ).num_hidden_layers;
      } catch {
        continue; // an unreadable config is reported where the model is loaded
      }
      if (typeof layers !== "number" || !Number.isInteger(layers) || layers < 1) continue;
      const modules = Array.from({ length: layers }, (_, i) =>
        kinds.map((k) => linearModuleName(i, k)),
      ).flat();
      const problem = filtersProblem(v.filters, modules);
      if (problem)
        fail(
          label,
          `search.parameters.${name}.filters`,
          `on ${base.name} with training.target_modules ${JSON.stringify(targets)}: ${problem}`,
        );
    }
  }
}

function resolveExecutors(s: StudyYaml, source: string): Study["executors"] {
  const out = {} as Study["executors"];
  for (const kind of STEP_KINDS) {
    const own = s.executors?.[kind];
    const setting = own ?? s.executor;
    const field = own ? `executors.${kind}` : "executor";
    if (setting.kind === "command") {
      if (kind !== "train")
        fail(
          source,
          `${field}.kind`,
          own
            ? `a command executor runs training steps only; remove executors.${kind} (or give it kind: local)`
            : `a command executor runs training steps only: set executor.kind: local and give the command as executors.train`,
        );
      try {
        checkCommandTemplate(setting.command);
      } catch (e) {
        if (!isMerglotError(e)) throw e;
        fail(source, `${field}.command`, e.message);
      }
    }
    if (setting.kind === "slurm" && setting.command !== undefined) {
      // The job runs the user's training command instead of merglot's trainer (same template as `command`).
      if (kind !== "train")
        fail(
          source,
          `${field}.command`,
          `a command runs training steps only; remove it from ${own ? `executors.${kind}` : "executor"} (give it in executors.train)`,
        );
      try {
        checkCommandTemplate(setting.command);
      } catch (e) {
        if (!isMerglotError(e)) throw e;
        fail(source, `${field}.command`, e.message);
      }
    }
    out[kind] = setting;
  }
  return out;
}

/** Read and validate a study file; YAML syntax errors name the line and column. */
export function loadStudy(path: string): Study {
  if (!existsSync(path))
    throw new MerglotError("study.missing", `${path}: study file not found or unreadable`);
  const { doc, bases } = readStudyDocument(path);
  // a bad field may come from a base file: messages name the files that made the study
  const label = bases.length > 0 ? `${path} (extends ${bases.join(", which extends ")})` : path;
  return parseStudy(doc, path, dirname(resolve(path)), label);
}

/** The executor settings of one step kind: `executors.<kind>`, else `executor`. */
export function executorOf(
  study: Pick<Study, "executors">,
  kind: (typeof STEP_KINDS)[number],
): ExecutorSetting {
  return study.executors[kind];
}
