/**
 * Control characters in input data never reach the terminal raw: real files whose tensor names carry ESC,
 * BEL, CR, C1 CSI and a bidi override, through the real CLI (tables, JSON, errors, warnings, usage errors).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import { makeAdapter, SMALL_MODULES, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, RAW_CONTROL, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-terminal-");
after(() => tmp.cleanup());

/** Retitles the terminal (OSC … BEL), clears it (CSI 2J), returns the cursor (CR), C1 CSI, right-to-left override. */
const EVIL = "x\u001b]0;PWNED\u0007\u001b[2J\r\u009b31m\u202eevil";
/** The same without CR: a module name must match `<module>.lora_A.weight`, whose `.` excludes line breaks. */
const EVIL_MODULE = "x\u001b]0;PWNED\u0007\u001b[2J\u009b31m\u202eevil";

test("inspect of a .safetensors file: table and JSON show escapes; JSON still round-trips the exact name", () => {
  const file = join(tmp.dir, "evil.safetensors");
  writeSafetensors(file, [{ name: EVIL, dtype: "F32", shape: [2, 2], data: new Float32Array(4) }], {
    note: "\u001b[31mred\u0085",
  });
  const table = runCli(tmp.dir, "inspect", file);
  assert.equal(table.status, 0, table.stderr);
  assert.doesNotMatch(table.stdout, RAW_CONTROL);
  assert.ok(table.stdout.includes("x\\u001b]0;PWNED\\u0007\\u001b[2J\\r\\u009b31m\\u202eevil"), table.stdout);
  assert.ok(table.stdout.includes('{"note":"\\u001b[31mred\\u0085"}'), table.stdout);
  const json = runCli(tmp.dir, "inspect", file, "--json");
  assert.equal(json.status, 0, json.stderr);
  assert.doesNotMatch(json.stdout, RAW_CONTROL);
  const rep = JSON.parse(json.stdout) as { tensors: { name: string }[]; metadata: Record<string, string> };
  assert.equal(rep.tensors[0]!.name, EVIL);
  assert.equal(rep.metadata.note, "\u001b[31mred\u0085");
});

test("inspect of an adapter folder: module names escaped in the table", () => {
  const dir = join(tmp.dir, "evil-adapter");
  makeAdapter(dir, {
    seed: 1,
    modules: [{ name: `model.layers.0.${EVIL_MODULE}`, out: 3, in: 4, rank: 2 }],
    extraConfig: { target_modules: [EVIL_MODULE], base_model_name_or_path: "\u001b[2Jbase" },
  });
  const r = runCli(tmp.dir, "inspect", dir);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, RAW_CONTROL);
  assert.ok(r.stdout.includes("model.layers.0.x\\u001b]0;PWNED"), r.stdout);
  assert.ok(r.stdout.includes("base      \\u001b[2Jbase"), r.stdout);
});

test("an error quoting a tensor name prints it escaped, on one line", () => {
  const dir = join(tmp.dir, "evil-extra");
  mkdirSync(dir);
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ r: 2, target_modules: ["q_proj"] }));
  writeSafetensors(join(dir, "adapter_model.safetensors"), [
    {
      name: `base_model.model.${EVIL}\n.lora_A.weight`,
      dtype: "F32",
      shape: [2, 2],
      data: new Float32Array(4),
    },
  ]);
  const r = runCli(tmp.dir, "inspect", dir);
  assertOneClearLine(r, /is not a LoRA factor/);
  assert.ok(
    r.stderr.includes("x\\u001b]0;PWNED\\u0007\\u001b[2J\\r\\u009b31m\\u202eevil\\n.lora_A"),
    r.stderr,
  );
});

test("a merge warning naming a module prints it escaped", () => {
  makeAdapter(join(tmp.dir, "plain"), { seed: 2 });
  const evilModule = { name: `model.layers.1.mlp.${EVIL_MODULE}`, out: 4, in: 6, rank: 2 };
  makeAdapter(join(tmp.dir, "extra"), {
    seed: 3,
    modules: [...SMALL_MODULES.slice(0, 2), evilModule],
    extraConfig: { target_modules: ["q_proj", "v_proj", EVIL_MODULE] },
  });
  const recipe = writeRecipe(
    tmp.dir,
    "w.yaml",
    "merge_method: ties\nmodels:\n  - model: plain\n  - model: extra\n",
  );
  const r = runCli(tmp.dir, "merge", recipe, "-o", "merged-w");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^merglot: warning: .*x\\u001b\]0;PWNED/m);
  assert.doesNotMatch(r.stderr, RAW_CONTROL);
  assert.doesNotMatch(r.stdout, RAW_CONTROL);
});

test("paths and unknown options with control characters are escaped too", () => {
  const missing = runCli(tmp.dir, "inspect", "no\u001b[2Jsuch.safetensors");
  assertOneClearLine(missing, /no\\u001b\[2Jsuch\.safetensors/);
  const usage = runCli(tmp.dir, "inspect", "x", "--\u001b]0;PWNED\u0007");
  assert.notEqual(usage.status, 0);
  assert.doesNotMatch(usage.stderr, RAW_CONTROL);
  assert.ok(usage.stderr.includes("--\\u001b]0;PWNED\\u0007"), usage.stderr);
});

test("a message quoting a 1,000,000-character tensor name stays one bounded line", () => {
  const dir = join(tmp.dir, "long-name");
  mkdirSync(dir);
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ r: 2, target_modules: ["q_proj"] }));
  const name = `base_model.model.${"n".repeat(1_000_000)}.extra`;
  writeSafetensors(join(dir, "adapter_model.safetensors"), [
    { name, dtype: "F32", shape: [1], data: new Float32Array(1) },
  ]);
  const r = runCli(tmp.dir, "inspect", dir);
  assertOneClearLine(
    r,
    /long-name\/adapter_model\.safetensors: tensor "base_model\.model\.n+ … \(\d+ characters omitted\) … n+\.extra" is not a LoRA factor/,
  );
  assert.ok(r.stderr.length < 2100, `${r.stderr.length} characters`);
});
