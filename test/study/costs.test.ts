import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { accountWork, costOf, updateComparison } from "../../src/study/costs.js";
import type { PlannedStep } from "../../src/study/plan.js";
import type { StepRecord } from "../../src/study/store.js";

function rec(id: string, wallS: number, device = "gpu", tokens: number | null = null): StepRecord {
  return {
    id,
    kind: id.split("/")[0]!,
    key: id,
    wallS,
    cpuS: 0,
    deviceS: wallS,
    device,
    executor: "local",
    tokens,
    info: {},
    finishedAt: "",
  };
}

function planned(
  id: string,
  kind: PlannedStep["kind"],
  deps: Record<string, string>,
  result?: PlannedStep["result"],
): PlannedStep {
  return { id, kind, params: {}, files: {}, deps, key: id, fileHashes: {}, ...(result ? { result } : {}) };
}

describe("time and cost accounting", () => {
  const prices = { currency: "USD", per_device_hour: { gpu: 3.6 } };

  test("per-language trainings counted sequentially (Σ) and as parallel jobs (max), merges after them", () => {
    // trainings of 100, 300 and 200 s, a merge of 20 s, at 3.6 per device-hour = 0.001 per device-second
    const a = accountWork(
      [rec("train/en", 100, "gpu", 10), rec("train/de", 300, "gpu", 30), rec("train/fr", 200, "gpu", 20)],
      [rec("merge/x", 20)],
      prices,
    );
    assert.equal(a.sequentialWallS, 620);
    assert.equal(a.parallelWallS, 320);
    assert.equal(a.deviceS, 620);
    assert.equal(a.tokens, 60);
    assert.ok(Math.abs(a.cost! - 0.62) < 1e-12);
  });

  test("a device without a price leaves the cost unknown; the executor's price applies when the device has none", () => {
    assert.equal(costOf(prices, [rec("train/en", 10, "tpu")]), null);
    assert.ok(
      Math.abs(
        costOf({ currency: "USD", per_device_hour: { local: 36 } }, [rec("train/en", 10, "cpu")])! - 0.1,
      ) < 1e-12,
    );
  });

  test("the update ablation's ratios: retrain one language + re-merge versus retrain the combined adapter", () => {
    const steps = [
      planned("train/s/de/update", "train", {}),
      planned("train/s/en", "train", {}),
      planned("train/s/combined/update", "train", {}),
      planned("merge/s/update/de/merged/ties/w1-d1", "merge", {
        adapter0: "train/s/en",
        adapter1: "train/s/de/update",
      }),
      planned(
        "evaluate/s/en/update/de/merged/ties/w1-d1",
        "evaluate",
        { adapter0: "merge/s/update/de/merged/ties/w1-d1" },
        {
          model: "m",
          task: "s",
          lang: "en",
          variant: "update/de/merged/ties/w1-d1",
        },
      ),
    ];
    const records = new Map([
      ["train/s/de/update", rec("train/s/de/update", 50)],
      ["train/s/en", rec("train/s/en", 40)],
      ["train/s/combined/update", rec("train/s/combined/update", 270)],
      ["merge/s/update/de/merged/ties/w1-d1", rec("merge/s/update/de/merged/ties/w1-d1", 10)],
    ]);
    const u = updateComparison(steps, records, prices, "de");
    assert.equal(u.entries.length, 1);
    const e = u.entries[0]!;
    assert.equal(e.variant, "merged/ties/w1-d1");
    assert.equal(e.update.wallS, 60); // 50 s retraining de + 10 s re-merging
    assert.equal(e.combined.wallS, 270);
    assert.equal(e.speedup, 4.5);
    assert.ok(Math.abs(e.costRatio - 4.5) < 1e-12); // same device and price on both sides
    assert.ok(Math.abs(e.update.cost! - 0.06) < 1e-12);
    assert.equal(u.speedup, 4.5);
  });
});
