/**
 * density_scope: global — trim keeps floor(ρ·N) entries over all of one adapter's task tensors together.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { makeAdapter, readDeltas, tempDir, writeRecipe, type FixtureModule } from "../helpers/fixtures.js";

const outputDeltas = (dir: string) => new Map([...readDeltas(dir)].map(([k, v]) => [k, v.d]));
import {
  delta,
  disjointRef,
  electRef,
  knotsRef,
  matmul,
  relErr,
  trimRef,
  type Dense,
} from "../helpers/reference.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const adapters: FixtureModule[][] = [0, 1, 2].map((i) =>
  makeAdapter(join(tmp.dir, `a${i}`), { seed: 300 + i }),
);
const densities = [0.3, 0.6, 0.45];

/** Trim over the concatenation of one adapter's task tensors (module order), then split back. */
function globalTrim(parts: Dense[], density: number): Dense[] {
  const total = parts.reduce((s, p) => s + p.length, 0);
  const cat = new Float64Array(total);
  let off = 0;
  for (const p of parts) {
    cat.set(p, off);
    off += p.length;
  }
  const t = trimRef(cat, density);
  off = 0;
  return parts.map((p) => {
    const s = t.slice(off, off + p.length);
    off += p.length;
    return s;
  });
}

const models = adapters
  .map((_, i) => `  - model: a${i}\n    parameters: { density: ${densities[i]} }`)
  .join("\n");

test("ties in delta space with density_scope: global", async () => {
  const p = writeRecipe(
    tmp.dir,
    "g.yaml",
    `merge_method: ties\nmodels:\n${models}\nparameters: { density_scope: global }\noutput: { rank: exact, dtype: float32 }\n`,
  );
  await merge(p, { output: join(tmp.dir, "g-out"), threads: 2 });
  const got = outputDeltas(join(tmp.dir, "g-out"));
  const names = adapters[0]!.map((m) => m.name);
  // the engine orders modules by layer then kind: q_proj, v_proj (layer 0), down_proj (layer 1) — same as fixtures
  const trimmed = adapters.map((ad, i) =>
    globalTrim(
      ad.map((m) => delta(m)),
      densities[i]!,
    ),
  );
  names.forEach((name, mi) => {
    const xs = trimmed.map((t) => t[mi]!);
    const ref = disjointRef(xs, [1, 1, 1], electRef(xs, "total"));
    assert.ok(relErr(got.get(name)!, ref) < 1e-5, `${name}: ${relErr(got.get(name)!, ref)}`);
  });
  // and it differs from per-tensor trimming
  const q = writeRecipe(
    tmp.dir,
    "t.yaml",
    `merge_method: ties\nmodels:\n${models}\noutput: { rank: exact, dtype: float32 }\n`,
  );
  await merge(q, { output: join(tmp.dir, "t-out"), threads: 1 });
  const per = outputDeltas(join(tmp.dir, "t-out"));
  assert.ok(names.some((n) => relErr(per.get(n)!, got.get(n)!) > 1e-3));
});

test("knots_ties with density_scope: global", async () => {
  const p = writeRecipe(
    tmp.dir,
    "k.yaml",
    `merge_method: knots_ties\nmodels:\n${models}\nparameters: { density_scope: global }\noutput: { dtype: float32 }\n`,
  );
  await merge(p, { output: join(tmp.dir, "k-out"), threads: 1 });
  const got = outputDeltas(join(tmp.dir, "k-out"));
  const mods = adapters[0]!;
  const bases = mods.map((m, mi) =>
    knotsRef(
      adapters.map((ad) => delta(ad[mi]!)),
      m.out,
      m.in,
    ),
  );
  const trimmed = adapters.map((_, i) =>
    globalTrim(
      bases.map((b) => b.tasks[i]!),
      densities[i]!,
    ),
  );
  mods.forEach((m, mi) => {
    const xs = trimmed.map((t) => t[mi]!);
    const merged = disjointRef(xs, [1, 1, 1], electRef(xs, "total"));
    const ref = matmul(bases[mi]!.u, merged, m.out, bases[mi]!.k, m.in);
    assert.ok(relErr(got.get(m.name)!, ref) < 1e-5, `${m.name}: ${relErr(got.get(m.name)!, ref)}`);
  });
});
