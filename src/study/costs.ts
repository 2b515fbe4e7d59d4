/**
 * Time and cost accounting from recorded step measurements (never estimates). A variant costs the trainings
 * and merges upstream of its evaluations. Per-language trainings are independent, so they are counted two
 * ways (the seed's Figure 3): one after the other (sequential wall = Σ) and as parallel jobs, one device each
 * (parallel wall = max); merges follow the trainings in both. Device time is the same either way (Σ), and
 * cost = device hours × the price per device-hour of the device (or executor) that ran the step.
 */
import type { PlannedStep } from "./plan.js";
import type { StepRecord } from "./store.js";

export interface CostEntry {
  model: string;
  task: string | null;
  variant: string;
  trainings: string[];
  merges: string[];
  sequentialWallS: number;
  parallelWallS: number;
  deviceS: number;
  tokens: number;
  cost: number | null;
  currency: string;
}

export interface CostModel {
  currency: string;
  per_device_hour: Record<string, number>;
}

/** Price per device-hour of the device a step ran on (device name first, then the executor kind). */
export function pricePerHour(model: CostModel, r: StepRecord): number | null {
  return model.per_device_hour[r.device] ?? model.per_device_hour[r.executor] ?? null;
}

/** Cost of a set of step records; null when a step's device has no price. */
export function costOf(model: CostModel, records: StepRecord[]): number | null {
  let total = 0;
  for (const r of records) {
    const p = pricePerHour(model, r);
    if (p === null) return null;
    total += (r.deviceS / 3600) * p;
  }
  return total;
}

/** Training and merge steps upstream of `ids` (the steps a variant needed). */
function upstreamWork(
  ids: string[],
  byId: Map<string, PlannedStep>,
): { trainings: string[]; merges: string[] } {
  const seen = new Set<string>();
  const stack = [...ids];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const d of Object.values(byId.get(id)!.deps)) stack.push(d);
  }
  const of = (kind: string) => [...seen].filter((id) => byId.get(id)!.kind === kind).sort();
  return { trainings: of("train"), merges: of("merge") };
}

/** Time and cost of a variant's trainings and merges, from their records. */
export function accountWork(
  trainings: StepRecord[],
  merges: StepRecord[],
  model: CostModel,
): Pick<CostEntry, "sequentialWallS" | "parallelWallS" | "deviceS" | "tokens" | "cost"> {
  const sum = (rs: StepRecord[], f: (r: StepRecord) => number) => rs.reduce((s, r) => s + f(r), 0);
  const mergeWall = sum(merges, (r) => r.wallS);
  return {
    sequentialWallS: sum(trainings, (r) => r.wallS) + mergeWall,
    parallelWallS: trainings.reduce((m, r) => Math.max(m, r.wallS), 0) + mergeWall,
    deviceS: sum(trainings, (r) => r.deviceS) + sum(merges, (r) => r.deviceS),
    tokens: sum(trainings, (r) => r.tokens ?? 0),
    cost: costOf(model, [...trainings, ...merges]),
  };
}

/** One cost entry per (model, task, variant) evaluated, from the records of the steps it needed. */
export function variantCosts(
  steps: PlannedStep[],
  records: Map<string, StepRecord>,
  model: CostModel,
): CostEntry[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const groups = new Map<string, { model: string; task: string | null; variant: string; evals: string[] }>();
  for (const s of steps) {
    if (!s.result) continue;
    const multitask = s.result.variant.startsWith("multitask/");
    const task = multitask ? null : s.result.task;
    const k = `${s.result.model}\0${task}\0${s.result.variant}`;
    const g = groups.get(k) ?? { model: s.result.model, task, variant: s.result.variant, evals: [] };
    g.evals.push(s.id);
    groups.set(k, g);
  }
  const out: CostEntry[] = [];
  for (const g of groups.values()) {
    const { trainings, merges } = upstreamWork(g.evals, byId);
    const tr = trainings.map((id) => records.get(id));
    const mr = merges.map((id) => records.get(id));
    if (tr.some((r) => !r) || mr.some((r) => !r)) continue; // not all of its work has run yet
    out.push({
      model: g.model,
      task: g.task,
      variant: g.variant,
      trainings,
      merges,
      ...accountWork(tr as StepRecord[], mr as StepRecord[], model),
      currency: model.currency,
    });
  }
  return out;
}

export interface UpdateEntry {
  model: string;
  task: string;
  lang: string;
  /** The merged variant the updated adapter was re-merged into. */
  variant: string;
  retrainLanguage: { step: string; wallS: number; deviceS: number };
  remerge: { step: string; wallS: number; deviceS: number };
  retrainCombined: { step: string; wallS: number; deviceS: number };
  /** Update path: retrain one language, then re-merge. */
  update: { wallS: number; deviceS: number; cost: number | null };
  combined: { wallS: number; deviceS: number; cost: number | null };
  /** combined wall / update wall. */
  speedup: number;
  /** combined cost / update cost (device-seconds ratio when no price is set: the price cancels). */
  costRatio: number;
}

/**
 * The update ablation's comparison, measured: retrain the updated language's adapter and re-merge, versus
 * retrain the combined adapter on the updated data.
 */
export function updateComparison(
  steps: PlannedStep[],
  records: Map<string, StepRecord>,
  model: CostModel,
  lang: string,
): { lang: string; entries: UpdateEntry[]; speedup: number | null; costRatio: number | null } {
  const entries: UpdateEntry[] = [];
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const s of steps) {
    if (s.kind !== "merge" || !s.id.includes(`/update/${lang}/merged/`)) continue;
    const trainL = Object.values(s.deps).find((d) => d.endsWith(`/${lang}/update`));
    if (!trainL) continue;
    const combinedId = trainL.replace(new RegExp(`/${lang}/update$`), "/combined/update");
    const rl = records.get(trainL);
    const rm = records.get(s.id);
    const rc = records.get(combinedId);
    if (!rl || !rm || !rc || !byId.has(combinedId)) continue;
    const upd = {
      wallS: rl.wallS + rm.wallS,
      deviceS: rl.deviceS + rm.deviceS,
      cost: costOf(model, [rl, rm]),
    };
    const comb = { wallS: rc.wallS, deviceS: rc.deviceS, cost: costOf(model, [rc]) };
    const evalStep = steps.find((e) => e.deps.adapter0 === s.id && e.result);
    entries.push({
      model: evalStep?.result?.model ?? "",
      task: evalStep?.result?.task ?? "",
      lang,
      variant: s.id.slice(s.id.indexOf("/update/") + `/update/${lang}/`.length),
      retrainLanguage: { step: trainL, wallS: rl.wallS, deviceS: rl.deviceS },
      remerge: { step: s.id, wallS: rm.wallS, deviceS: rm.deviceS },
      retrainCombined: { step: combinedId, wallS: rc.wallS, deviceS: rc.deviceS },
      update: upd,
      combined: comb,
      speedup: comb.wallS / upd.wallS,
      costRatio:
        upd.cost !== null && comb.cost !== null && upd.cost > 0
          ? comb.cost / upd.cost
          : comb.deviceS / upd.deviceS,
    });
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  return {
    lang,
    entries,
    speedup: mean(entries.map((e) => e.speedup)),
    costRatio: mean(entries.map((e) => e.costRatio)),
  };
}
