/**
 * Per-module parameter values, as mergekit's recipes write them: a weight or density may be a number, a
 * gradient (a list of numbers interpolated over the decoder layers) or a list of conditions
 * `{ filter, value }` of which the first whose filter is a substring of the module's name (or that has no
 * filter, or filter "*") gives the value. A condition list that matches nothing falls through to the next
 * level (the model's setting → the recipe's `parameters` → the default), as in mergekit.
 *
 * The layer position t of a module is its layer index / (layers − 1) (1 with one layer); modules outside the
 * decoder layers take t = 0 before them (embeddings) and t = 1 after them (lm_head), mergekit's convention
 * for pre- and post-weights. The layer count is the highest layer index of the merged adapters + 1.
 *
 * No zod here (the schema is in recipe.ts): merge worker threads import this module, and loading zod in each
 * of them costs start-up time and file handles.
 */
export type Gradient = readonly number[];
export interface Condition {
  filter?: string;
  value: number | Gradient;
}
/** A recipe's setting of one per-model parameter. */
export type ParamSetting = number | Gradient | readonly Condition[];

/** A gradient's value at t ∈ [0, 1]: linear interpolation between its evenly spaced points. */
export function gradientAt(g: Gradient, t: number): number {
  const scaled = t * (g.length - 1);
  const i0 = Math.floor(scaled);
  const i1 = Math.min(g.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * g[i0]! + frac * g[i1]!;
}

function isConditions(s: ParamSetting): s is readonly Condition[] {
  return Array.isArray(s) && s.length > 0 && typeof s[0] === "object";
}

/** The value a setting gives the module `name` at layer position t; undefined when no condition matches. */
export function settingAt(s: ParamSetting, name: string, t: number): number | undefined {
  if (typeof s === "number") return s;
  if (!isConditions(s)) return gradientAt(s as Gradient, t);
  for (const c of s) {
    if (c.filter === undefined || c.filter === "*" || name.includes(c.filter))
      return typeof c.value === "number" ? c.value : gradientAt(c.value, t);
  }
  return undefined;
}

/** The first value of a chain of settings (most specific first) that applies to the module; else `dflt`. */
export function resolveSetting(
  chain: readonly (ParamSetting | undefined)[],
  name: string,
  t: number,
  dflt: number,
): number {
  for (const s of chain) {
    if (s === undefined) continue;
    const v = settingAt(s, name, t);
    if (v !== undefined) return v;
  }
  return dflt;
}

/** Every number a setting can take at some t lies between two of these (its written numbers). */
export function settingNumbers(s: ParamSetting): number[] {
  if (typeof s === "number") return [s];
  if (!isConditions(s)) return [...(s as Gradient)];
  return s.flatMap((c) => (typeof c.value === "number" ? [c.value] : [...c.value]));
}

/** A module's layer position t (see the header), from its layer index and the adapters' layer count. */
export function layerPosition(name: string, layer: number | null, layers: number): number {
  if (layer === null) return /embed/.test(name) ? 0 : 1;
  return layers > 1 ? layer / (layers - 1) : 1;
}

/**
 * A resolved per-model parameter: one number for every module, or the settings that apply (the model's, then
 * the recipe's) and the default, resolved per module by `paramAt`.
 */
export type ModelParam = number | { settings: ParamSetting[]; fallback: number };

/** The chain of settings (most specific first) as a ModelParam: a number when every module gets the same. */
export function modelParam(chain: readonly (ParamSetting | undefined)[], fallback: number): ModelParam {
  const given = chain.filter((s): s is ParamSetting => s !== undefined);
  if (given.length === 0) return fallback;
  if (typeof given[0] === "number") return given[0];
  return { settings: given, fallback };
}

export function paramAt(p: ModelParam, name: string, t: number): number {
  return typeof p === "number" ? p : resolveSetting(p.settings, name, t, p.fallback);
}

/** Every number the parameter can take is within the range of these. */
export function paramNumbers(p: ModelParam): number[] {
  return typeof p === "number" ? [p] : [...p.settings.flatMap(settingNumbers), p.fallback];
}
