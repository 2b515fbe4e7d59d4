/** Shared pieces of the merge fault tests: real CLI runs, adapters with planted faults, temp checks. */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { writeAdapter } from "../../src/formats/peft.js";
import { makeAdapter, type ModuleShape } from "./fixtures.js";

export const CLI = join(process.cwd(), "dist/src/cli/main.js");

/** One real `merglot` process; `shell` runs it through bash (e.g. to lower `ulimit -n` first). */
export function runCli(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; shellPrefix?: string },
): SpawnSyncReturns<string> {
  const env = { ...process.env, ...opts.env };
  if (opts.shellPrefix !== undefined) {
    const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    return spawnSync("bash", ["-c", `${opts.shellPrefix}; exec ${quoted}`], {
      encoding: "utf8",
      cwd: opts.cwd,
      env,
    });
  }
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: opts.cwd, env });
}

/** Asserts a failed run: exit 1 and exactly one stderr line `merglot: …` matching `pattern`. */
export function assertOneLineError(r: SpawnSyncReturns<string>, pattern: RegExp): void {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(r.status, 1, `exit status (stderr: ${r.stderr.slice(0, 2000)})`);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr.slice(0, 2000)}`);
  assert.match(lines[0]!, /^merglot: /);
  assert.match(lines[0]!, pattern);
}

/** Names in `dir` that look like merglot temp outputs (`.NAME.tmp-PID-…`). */
export function tempsIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes(".tmp-"));
}

/** `layers` decoder layers with q_proj and v_proj of size×size at `rank`: big enough for native GEMM. */
export function layeredModules(layers: number, size: number, rank: number): ModuleShape[] {
  const mods: ModuleShape[] = [];
  for (let l = 0; l < layers; l++)
    for (const k of ["q_proj", "v_proj"])
      mods.push({ name: `model.layers.${l}.self_attn.${k}`, out: size, in: size, rank });
  return mods;
}

/** An adapter like makeAdapter's whose factor `factor` of module `module` holds `value` at `index`. */
export function makeAdapterWith(
  dir: string,
  seed: number,
  modules: ModuleShape[],
  fault: { module: number; factor: "a" | "b"; index: number; value: number },
): void {
  const mods = makeAdapter(dir, { seed, modules });
  mods[fault.module]![fault.factor][fault.index] = fault.value;
  writeAdapter(dir, {
    config: {
      r: modules[0]!.rank,
      lora_alpha: 16,
      target_modules: ["q_proj", "v_proj"],
      base_model_name_or_path: "tiny/base",
    },
    tensors: mods.flatMap((m) => [
      { name: `base_model.model.${m.name}.lora_A.weight`, shape: [m.rank, m.in], data: m.a },
      { name: `base_model.model.${m.name}.lora_B.weight`, shape: [m.out, m.rank], data: m.b },
    ]),
    force: true,
  });
}
