import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { inspectPath } from "../../src/inspect/inspect.js";
import { makeAdapter, tempDir } from "../helpers/fixtures.js";
import { delta } from "../helpers/reference.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const CLI = join(process.cwd(), "dist/src/cli/main.js");

test("deltaNorm from the factors equals ‖s·B·A‖_F of the dense product", () => {
  const dir = join(tmp.dir, "a");
  const mods = makeAdapter(dir, { seed: 3, alpha: 6, useRslora: true });
  const r = inspectPath(dir);
  assert.equal(r.kind, "adapter");
  for (const m of mods) {
    const row = r.modules!.find((x) => x.name === m.name)!;
    const d = delta(m);
    const ref = Math.sqrt(d.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(row.deltaNorm - ref) <= 1e-6 * ref, `${m.name}: ${row.deltaNorm} vs ${ref}`);
    assert.equal(row.scaling, 6 / Math.sqrt(m.rank));
    assert.equal(row.rank, m.rank);
  }
  assert.equal(
    r.totals.parameters,
    mods.reduce((s, m) => s + m.rank * (m.in + m.out), 0),
  );
});

test("CLI: inspect --json, table output, and a clear error without a stack trace", () => {
  const dir = join(tmp.dir, "cli");
  makeAdapter(dir, { seed: 4 });
  const j = spawnSync(process.execPath, [CLI, "inspect", dir, "--json"], { encoding: "utf8" });
  assert.equal(j.status, 0, j.stderr);
  const obj = JSON.parse(j.stdout) as { modules: Record<string, unknown>[] };
  for (const key of ["name", "rank", "alpha", "scaling", "in", "out", "dtype", "deltaNorm"])
    assert.ok(key in obj.modules[0]!, key);
  const t = spawnSync(process.execPath, [CLI, "inspect", dir], { encoding: "utf8" });
  assert.equal(t.status, 0);
  assert.match(t.stdout, /model\.layers\.0\.self_attn\.q_proj\s+8×6\s+2/);
  assert.match(t.stdout, /total: 3 modules, 6 tensors/);
  const bad = spawnSync(process.execPath, [CLI, "inspect", join(tmp.dir, "nope")], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^merglot: .*nope: no such file or folder\n$/);
  assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/);
});

test("inspect shows GGUF files: metadata (long arrays summarised) and tensors", async () => {
  const { writeGguf, gguf } = await import("../../src/formats/gguf.js");
  const p = join(tmp.dir, "x.gguf");
  writeGguf(
    p,
    [
      ["general.architecture", gguf.string("llama")],
      [
        "tokenizer.ggml.tokens",
        { type: "array", itemType: "string", value: Array.from({ length: 20 }, (_, i) => `t${i}`) },
      ],
    ],
    [{ name: "blk.0.attn_q.weight", type: "F32", shape: [3, 4], data: new Float32Array(12) }],
  );
  const r = inspectPath(p);
  assert.equal(r.kind, "gguf");
  assert.equal(r.ggufMetadata!["general.architecture"], "llama");
  assert.equal(r.ggufMetadata!["tokenizer.ggml.tokens"], "[string × 20]");
  assert.deepEqual(r.tensors![0], { name: "blk.0.attn_q.weight", dtype: "F32", shape: [3, 4], bytes: 48 });
  assert.equal(r.totals.parameters, 12);
});
