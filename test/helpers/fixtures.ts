/** Small PEFT adapter folders written for tests, with their factors kept for reference computations. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import { LoraAdapter, writeAdapter } from "../../src/formats/peft.js";
import { delta } from "./reference.js";
import { mulberry32, randn } from "./rand.js";

export interface ModuleShape {
  name: string;
  out: number;
  in: number;
  rank: number;
}

export interface FixtureModule extends ModuleShape {
  a: Float32Array;
  b: Float32Array;
  scaling: number;
}

export const SMALL_MODULES: ModuleShape[] = [
  { name: "model.layers.0.self_attn.q_proj", out: 8, in: 6, rank: 2 },
  { name: "model.layers.0.self_attn.v_proj", out: 4, in: 6, rank: 2 },
  { name: "model.layers.1.mlp.down_proj", out: 6, in: 10, rank: 3 },
];

export function tempDir(prefix = "merglot-test-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function makeAdapter(
  dir: string,
  opts: {
    seed: number;
    modules?: ModuleShape[];
    alpha?: number;
    base?: string;
    useRslora?: boolean;
    dtype?: "F32" | "F16" | "BF16";
    extraConfig?: Record<string, unknown>;
  },
): FixtureModule[] {
  const rand = mulberry32(opts.seed);
  const shapes = opts.modules ?? SMALL_MODULES;
  const alpha = opts.alpha ?? 16;
  const r = shapes[0]!.rank;
  const mods = shapes.map((m) => ({
    ...m,
    a: randn(rand, m.rank * m.in, 0.5),
    b: randn(rand, m.out * m.rank, 0.5),
    scaling: opts.useRslora ? alpha / Math.sqrt(m.rank) : alpha / m.rank,
  }));
  const rankPattern: Record<string, number> = {};
  for (const m of shapes) if (m.rank !== r) rankPattern[m.name] = m.rank;
  writeAdapter(dir, {
    config: {
      r,
      lora_alpha: alpha,
      target_modules: [...new Set(shapes.map((m) => m.name.slice(m.name.lastIndexOf(".") + 1)))],
      base_model_name_or_path: opts.base ?? "tiny/base",
      use_rslora: opts.useRslora ?? false,
      rank_pattern: rankPattern,
      ...opts.extraConfig,
    },
    tensors: mods.flatMap((m) => [
      { name: `base_model.model.${m.name}.lora_A.weight`, shape: [m.rank, m.in], data: m.a },
      { name: `base_model.model.${m.name}.lora_B.weight`, shape: [m.out, m.rank], data: m.b },
    ]),
    dtype: opts.dtype ?? "F32",
  });
  return mods;
}

export function writeRecipe(dir: string, name: string, yaml: string): string {
  const p = join(dir, name);
  writeFileSync(p, yaml);
  return p;
}

/** Every module of an adapter folder as its dense ΔW = s·B·A (naive product) and its rank. */
export function readDeltas(dir: string): Map<string, { d: Float64Array; rank: number }> {
  const a = LoraAdapter.open(dir);
  try {
    return new Map(
      a.modules.map((m) => {
        const f = {
          a: a.readA(m),
          b: a.readB(m),
          out: m.outFeatures,
          in: m.inFeatures,
          rank: m.rank,
          scaling: m.scaling,
        };
        return [m.name, { d: delta(f), rank: m.rank }];
      }),
    );
  } finally {
    a.close();
  }
}

/** `fn` throws a MerglotError with this code and a message matching `pattern`. */
export function expectMerglotError(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MerglotError, `expected a MerglotError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}
