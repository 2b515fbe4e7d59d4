import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  LoraAdapter,
  matchPatternKey,
  moduleScaling,
  parsePeftConfig,
  writeAdapter,
} from "../../src/formats/peft.js";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import { MerglotError } from "../../src/errors.js";
import { makeAdapter, tempDir } from "../helpers/fixtures.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function expectMerglot(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof MerglotError && pattern.test(e.message));
}

describe("PEFT config", () => {
  test("pattern keys match as (.*\\.)?KEY$ in insertion order", () => {
    assert.equal(matchPatternKey(["q_proj"], "model.layers.0.self_attn.q_proj"), "q_proj");
    assert.equal(
      matchPatternKey(["layers.0.self_attn.q_proj"], "model.layers.0.self_attn.q_proj"),
      "layers.0.self_attn.q_proj",
    );
    // a key must match whole path components: "proj" does not match "q_proj"
    assert.equal(matchPatternKey(["proj"], "model.layers.0.self_attn.q_proj"), undefined);
    // layer 1 must not match layer 11
    assert.equal(matchPatternKey(["layers.1.mlp.up_proj"], "model.layers.11.mlp.up_proj"), undefined);
    assert.equal(
      matchPatternKey(["v_proj", "self_attn.v_proj"], "model.layers.3.self_attn.v_proj"),
      "v_proj",
    );
  });

  test("scaling: alpha/r, rsLoRA alpha/sqrt(r), rank_pattern and alpha_pattern", () => {
    const c = parsePeftConfig(
      { r: 8, lora_alpha: 16, rank_pattern: { "layers.1.mlp.up_proj": 4 }, alpha_pattern: { q_proj: 32 } },
      "cfg.json",
    );
    assert.deepEqual(moduleScaling(c, "model.layers.0.mlp.up_proj"), { rank: 8, alpha: 16, scaling: 2 });
    assert.deepEqual(moduleScaling(c, "model.layers.1.mlp.up_proj"), { rank: 4, alpha: 16, scaling: 4 });
    assert.deepEqual(moduleScaling(c, "model.layers.0.self_attn.q_proj"), { rank: 8, alpha: 32, scaling: 4 });
    const rs = parsePeftConfig({ r: 16, lora_alpha: 8, use_rslora: true }, "cfg.json");
    assert.equal(moduleScaling(rs, "x.q_proj").scaling, 8 / 4);
  });

  test("refuses DoRA, lora_bias, non-LoRA types and bad fields with the file named", () => {
    expectMerglot(
      () => parsePeftConfig({ r: 8, use_dora: true }, "a/adapter_config.json"),
      /a\/adapter_config\.json: DoRA/,
    );
    expectMerglot(() => parsePeftConfig({ r: 8, lora_bias: true }, "c.json"), /lora_bias/);
    expectMerglot(
      () => parsePeftConfig({ r: 8, peft_type: "IA3" }, "c.json"),
      /peft_type "IA3" is not supported/,
    );
    expectMerglot(() => parsePeftConfig({ r: 0 }, "c.json"), /"r" must be a positive integer/);
    expectMerglot(() => parsePeftConfig([], "c.json"), /must contain a JSON object/);
    expectMerglot(() => parsePeftConfig({ r: 4, rank_pattern: { q: "x" } }, "c.json"), /rank_pattern\.q/);
  });
});

describe("adapter folders", () => {
  test("write → read round trip groups modules with shapes, ranks and scaling", () => {
    const dir = join(tmp.dir, "rt");
    const mods = makeAdapter(dir, { seed: 1, alpha: 12 });
    const a = LoraAdapter.open(dir);
    try {
      assert.equal(a.modules.length, mods.length);
      for (const m of mods) {
        const lm = a.get(m.name)!;
        assert.equal(lm.rank, m.rank);
        assert.equal(lm.inFeatures, m.in);
        assert.equal(lm.outFeatures, m.out);
        assert.equal(lm.scaling, 12 / m.rank);
        assert.deepEqual(a.readA(lm), m.a);
        assert.deepEqual(a.readB(lm), m.b);
      }
      assert.equal(a.get("model.layers.1.mlp.down_proj")!.layer, 1);
      assert.equal(a.get("model.layers.1.mlp.down_proj")!.kind, "down_proj");
    } finally {
      a.close();
    }
  });

  function folder(
    name: string,
    config: object | string | null,
    tensors: { name: string; shape: number[] }[] | null,
  ): string {
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    if (config !== null)
      writeFileSync(
        join(dir, "adapter_config.json"),
        typeof config === "string" ? config : JSON.stringify(config),
      );
    if (tensors) {
      writeSafetensors(
        join(dir, "adapter_model.safetensors"),
        tensors.map((t) => ({
          name: t.name,
          dtype: "F32" as const,
          shape: t.shape,
          data: new Float32Array(t.shape.reduce((s, v) => s * v, 1)),
        })),
      );
    }
    return dir;
  }
  const A = { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [2, 4] };
  const B = { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [3, 2] };

  test("clear errors for broken folders", () => {
    expectMerglot(() => LoraAdapter.open(join(tmp.dir, "missing")), /missing: adapter folder not found/);
    const pickle = folder("pickle", { r: 2 }, null);
    writeFileSync(join(pickle, "adapter_model.bin"), "x");
    expectMerglot(
      () => LoraAdapter.open(pickle),
      /adapter_model\.bin: pickle weights are not read.*save_pretrained/,
    );
    expectMerglot(() => LoraAdapter.open(folder("noconfig", null, [A, B])), /no adapter_config\.json/);
    expectMerglot(
      () => LoraAdapter.open(folder("badjson", "{r: 2", [A, B])),
      /adapter_config\.json: not valid JSON/,
    );
    expectMerglot(() => LoraAdapter.open(folder("onlyA", { r: 2 }, [A])), /q_proj" has lora_A but no lora_B/);
    expectMerglot(() => LoraAdapter.open(folder("onlyB", { r: 2 }, [B])), /q_proj" has lora_B but no lora_A/);
    expectMerglot(
      () =>
        LoraAdapter.open(
          folder("dora", { r: 2 }, [
            A,
            B,
            { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", shape: [3] },
          ]),
        ),
      /DoRA/,
    );
    expectMerglot(
      () => LoraAdapter.open(folder("rankmismatch", { r: 4 }, [A, B])),
      /rank 2 in the weights but 4 in adapter_config\.json/,
    );
    expectMerglot(
      () => LoraAdapter.open(folder("badrank", { r: 2 }, [A, { ...B, shape: [3, 5] }])),
      /lora_A has rank 2 but lora_B has rank 5/,
    );
    expectMerglot(
      () =>
        LoraAdapter.open(
          folder("extra", { r: 2 }, [A, B, { name: "base_model.model.lm_head.weight", shape: [2, 2] }]),
        ),
      /not a LoRA factor/,
    );
  });

  test("writing is atomic and refuses to overwrite unless forced", () => {
    const dir = join(tmp.dir, "atomic");
    const t = [{ name: A.name, shape: A.shape, data: new Float32Array(8) }];
    const cfg = { r: 2, lora_alpha: 2, target_modules: ["q_proj"], base_model_name_or_path: null };
    writeAdapter(dir, { config: cfg, tensors: t });
    expectMerglot(() => writeAdapter(dir, { config: cfg, tensors: t }), /already exists.*--force/);
    writeAdapter(dir, { config: cfg, tensors: t, force: true });
    // a failing write (wrong tensor size) leaves nothing behind
    const bad = join(tmp.dir, "atomic-bad");
    assert.throws(() =>
      writeAdapter(bad, {
        config: cfg,
        tensors: [{ name: A.name, shape: [2, 4], data: new Float32Array(3) }],
      }),
    );
    assert.equal(existsSync(bad), false);
    assert.equal(readdirSync(tmp.dir).filter((f) => f.includes(".tmp-")).length, 0);
  });
});
