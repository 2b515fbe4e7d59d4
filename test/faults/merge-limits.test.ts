/**
 * Inputs whose sizes or numbers exceed what the machine allows: a sparse file whose header declares a
 * 128 GB tensor (refused at planning, before any data is read or hashed), more adapters than open-file
 * handles (the merge shares one handle per adapter between all threads; past the limit, one clear line),
 * and hashing that stops as soon as the merge fails.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  writeFileSync,
  writeSync,
  ftruncateSync,
} from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { merge } from "../../src/merge/engine.js";
import { hashAll } from "../../src/merge/hashing.js";
import { MerglotError } from "../../src/errors.js";
import { makeAdapter, tempDir, writeRecipe, SMALL_MODULES } from "../helpers/fixtures.js";
import { assertOneLineError, runCli, tempsIn } from "../helpers/merge-faults.js";

const tmp = tempDir("merglot-faults-limits-");
after(() => tmp.cleanup());

/**
 * An adapter folder whose weights file has a valid header declaring `tensors` and is extended to the full
 * declared size without writing data (a sparse file: it takes no disk space).
 */
function sparseAdapter(dir: string, tensors: { name: string; shape: number[] }[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "adapter_config.json"),
    JSON.stringify({
      peft_type: "LORA",
      r: 8,
      lora_alpha: 8,
      target_modules: ["q_proj"],
      base_model_name_or_path: "tiny/base",
    }),
  );
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 4);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8);
  const fd = openSync(join(dir, "adapter_model.safetensors"), "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(text));
    ftruncateSync(fd, 8 + text.length + offset);
  } finally {
    closeSync(fd);
  }
}

const Q = "model.layers.0.self_attn.q_proj";
makeAdapter(join(tmp.dir, "small"), { seed: 1, modules: [{ name: Q, out: 16, in: 16, rank: 8 }] });
// lora_A 8 × 4,000,000,000 float32: a 128 GB tensor
sparseAdapter(join(tmp.dir, "huge"), [
  { name: `base_model.model.${Q}.lora_A.weight`, shape: [8, 4_000_000_000] },
  { name: `base_model.model.${Q}.lora_B.weight`, shape: [16, 8] },
]);

test("a header declaring a 128 GB tensor: refused at planning, naming module and adapter; nothing read", async () => {
  const recipe = writeRecipe(tmp.dir, "huge.yaml", "merge_method: ties\nmodels:\n  - model: huge\n");
  let progressed = 0;
  await assert.rejects(
    merge(recipe, { output: join(tmp.dir, "out-huge"), threads: 1, onProgress: () => progressed++ }),
    (e: unknown) => {
      assert.ok(e instanceof MerglotError, String(e));
      // refused when the adapter is opened (src/formats/safetensors.ts), before planning reads anything
      assert.equal(e.code, "safetensors.too_large");
      assert.match(e.message, /huge\/adapter_model\.safetensors: .*lora_A.* has 32000000000 elements/);
      return true;
    },
  );
  assert.equal(progressed, 0);
  // no handle on the 128 GB file stays open (hashing never started, or was stopped)
  assert.deepEqual(openHandlesTo(join(tmp.dir, "huge")), []);
  // the real CLI: one line, exit 1, nothing written
  const r = runCli(["merge", recipe, "-o", "out-cli"], { cwd: tmp.dir });
  assertOneLineError(r, /huge\/adapter_model\.safetensors: .*lora_A.* has 32000000000 elements/);
  assert.equal(existsSync(join(tmp.dir, "out-cli")), false);
  assert.deepEqual(tempsIn(tmp.dir), []);
});

/** The files under `prefix` this process holds open (Linux /proc). */
function openHandlesTo(prefix: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(prefix)) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

test("hashing stops at the next chunk once the merge has failed (its signal aborted)", async () => {
  // a 64 MB sparse input: 16 chunks of 4 MB; aborting right after the start stops it at the first
  const big = join(tmp.dir, "big");
  sparseAdapter(big, [
    { name: `base_model.model.${Q}.lora_A.weight`, shape: [8, 2 ** 21] },
    { name: `base_model.model.${Q}.lora_B.weight`, shape: [16, 8] },
  ]);
  const file = join(big, "adapter_model.safetensors");
  const stop = new AbortController();
  const hashing = hashAll([file, file], stop.signal);
  stop.abort();
  await assert.rejects(hashing, /big\/adapter_model\.safetensors: hashing stopped because the merge failed$/);
  // without an abort the same call completes, with sha256 as node:crypto computes it in one piece
  const whole = createHash("sha256").update(readFileSync(file)).digest("hex");
  assert.deepEqual(await hashAll([file], new AbortController().signal), [whole]);
  assert.deepEqual(openHandlesTo(big), [], "no handle left on the input");
});

test("more adapters than threads × handles allow: 60 adapters on 4 threads under `ulimit -n 160` merge fine", () => {
  const dir = join(tmp.dir, "many");
  mkdirSync(dir);
  const names = Array.from({ length: 200 }, (_, i) => `a${i}`);
  names.forEach((n, i) => makeAdapter(join(dir, n), { seed: 100 + i, modules: SMALL_MODULES }));
  const list = (k: number) =>
    names
      .slice(0, k)
      .map((n) => `  - model: ${n}\n`)
      .join("");
  const r60 = writeRecipe(dir, "r60.yaml", `merge_method: ties\nmodels:\n${list(60)}`);
  // before: every worker opened every adapter (4 × 60 handles) and the failed open was reported as
  // "invalid JSON" in adapter_config.json
  const limited = runCli(["merge", r60, "-o", "limited", "--threads", "4"], {
    cwd: dir,
    shellPrefix: "ulimit -n 160",
  });
  assert.equal(limited.status, 0, limited.stderr);
  const free = runCli(["merge", r60, "-o", "free", "--threads", "4"], { cwd: dir });
  assert.equal(free.status, 0, free.stderr);
  assert.deepEqual(
    readFileSync(join(dir, "limited", "adapter_model.safetensors")),
    readFileSync(join(dir, "free", "adapter_model.safetensors")),
    "the same result as without the limit",
  );
  // 200 adapters need more handles than 160: one clear line naming an adapter, exit 1, nothing written
  const r200 = writeRecipe(dir, "r200.yaml", `merge_method: ties\nmodels:\n${list(200)}`);
  const over = runCli(["merge", r200, "-o", "over", "--threads", "4"], {
    cwd: dir,
    shellPrefix: "ulimit -n 160",
  });
  assertOneLineError(
    over,
    /^merglot: .*\/many\/a\d+\/(adapter_model\.safetensors|adapter_config\.json): too many open files \(raise the limit with `ulimit -n`, or merge fewer adapters at once\)/,
  );
  assert.doesNotMatch(over.stderr, /invalid JSON/);
  assert.equal(existsSync(join(dir, "over")), false);
  assert.deepEqual(tempsIn(dir), []);
});
