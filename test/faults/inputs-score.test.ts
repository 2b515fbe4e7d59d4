/**
 * `merglot score` and the other commands' numeric flags against hostile input: a folder as --pred, a line
 * nested 100,000 deep (a stack overflow in anything recursive), a sparse file larger than a JavaScript string
 * can hold, and counts such as --samples 1e12. Each is one clear line naming the file:line or the flag.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdirSync, openSync, ftruncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-score-faults-");
after(() => tmp.cleanup());

const ref = join(tmp.dir, "ref.jsonl");
writeFileSync(ref, '{"label": "a"}\n{"label": "b"}\n');
const pred = join(tmp.dir, "pred.jsonl");
writeFileSync(pred, '{"label": "a"}\n{"label": "a"}\n');
const score = (...args: string[]) => runCli(tmp.dir, "score", "--metric", "accuracy", "--ref", ref, ...args);

test("a folder given as --pred", () => {
  mkdirSync(join(tmp.dir, "preds"));
  assertOneClearLine(score("--pred", join(tmp.dir, "preds")), /preds: is a folder, not a file/);
});

test("a JSON line nested 100,000 deep, at the top or inside a field", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  writeFileSync(join(tmp.dir, "deep.jsonl"), `{"label": "a"}\n${deep}\n`);
  assertOneClearLine(
    score("--pred", "deep.jsonl"),
    /deep\.jsonl:2: JSON nested deeper than 512 levels \(at column 513\)/,
  );
  writeFileSync(join(tmp.dir, "deep-field.jsonl"), `{"label": ${deep}}\n{"label": "a"}\n`);
  // `{"label": ` is 10 characters: the 512th nested bracket is at column 10 + 512, the 513th one past it
  assertOneClearLine(
    score("--pred", "deep-field.jsonl"),
    /deep-field\.jsonl:1: JSON nested deeper than 512 levels \(at column 522\)/,
  );
});

test("a file larger than can be read whole is refused before reading", () => {
  const big = join(tmp.dir, "big.jsonl");
  const fd = openSync(big, "w");
  ftruncateSync(fd, 600 * 2 ** 20); // sparse
  closeSync(fd);
  assertOneClearLine(
    score("--pred", big),
    /big\.jsonl: 629145600 bytes is more than the 524288000 bytes accepted/,
  );
});

test("counts are bounded: --samples, --paired-samples, --seed and layer indices", () => {
  assertOneClearLine(score("--pred", pred, "--samples", "1e12"), /--samples: at most 1000000, got "1e12"/);
  assertOneClearLine(
    score("--pred", pred, "--compare", pred, "--paired-samples", "1e12"),
    /--paired-samples: at most 1000000, got "1e12"/,
  );
  assertOneClearLine(score("--pred", pred, "--seed", "1e300"), /--seed: at most 9007199254740991/);
  assertOneClearLine(score("--pred", pred, "--samples", ""), /--samples: expected an integer ≥ 1, got ""/);
  // a count within the bound still runs
  const ok = score("--pred", pred, "--samples", "1000", "--json");
  assert.equal(ok.status, 0, ok.stderr);
});

test("other commands' counts: merge --threads, train sizes", () => {
  makeAdapter(join(tmp.dir, "a"), { seed: 1 });
  makeAdapter(join(tmp.dir, "b"), { seed: 2 });
  const recipe = writeRecipe(tmp.dir, "r.yaml", "merge_method: ties\nmodels:\n  - model: a\n  - model: b\n");
  assertOneClearLine(
    runCli(tmp.dir, "merge", recipe, "-o", "out", "--threads", "1e9"),
    /--threads: at most 256, got "1e9"/,
  );
  const train = (...args: string[]) =>
    runCli(tmp.dir, "train", "--base", "nowhere", "--data", pred, "-o", "t", ...args);
  assertOneClearLine(train("--epochs", "1e12"), /--epochs: at most 100000, got "1e12"/);
  assertOneClearLine(train("--batch", "1e9"), /--batch: at most 65536, got "1e9"/);
  assertOneClearLine(train("--seq-len", "1e9"), /--seq-len: at most 1048576, got "1e9"/);
  assertOneClearLine(train("--r", "1e9"), /--r: at most 65536, got "1e9"/);
});

test("a recipe that is a folder or an endless device is one clear line", () => {
  mkdirSync(join(tmp.dir, "recipe-dir"));
  assertOneClearLine(
    runCli(tmp.dir, "merge", "recipe-dir", "-o", "out"),
    /recipe-dir: is a folder, not a file/,
  );
  if (process.platform === "linux") {
    assertOneClearLine(
      runCli(tmp.dir, "merge", "/dev/zero", "-o", "out"),
      /\/dev\/zero: its content is more than the 67108864 bytes accepted/,
    );
  }
});
