/**
 * A named pipe where a weights file belongs: opening a FIFO for reading blocks until a writer appears, so a
 * run used to hang forever. Now it is one clear line naming the path, at once. Real FIFOs (mkfifo).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-fifo-");
after(() => tmp.cleanup());

function adapterWithFifoWeights(): string {
  const dir = join(tmp.dir, "a", "en");
  mkdirSync(join(tmp.dir, "a"), { recursive: true });
  cpSync(join(process.cwd(), "data/demo/adapters/en"), dir, { recursive: true });
  rmSync(join(dir, "adapter_model.safetensors"));
  execFileSync("mkfifo", [join(dir, "adapter_model.safetensors")]);
  return dir;
}

test("merge and inspect of an adapter whose weights file is a named pipe: one line, no hang", () => {
  adapterWithFifoWeights();
  writeRecipe(tmp.dir, "r.yaml", "merge_method: ties\nmodels: [{model: a/en, parameters: {density: 0.5}}]\n");
  for (const args of [
    ["merge", "r.yaml", "-o", "out"],
    ["inspect", "a/en"],
  ]) {
    const r = runCli(tmp.dir, ...args);
    assert.equal(r.status, 1, r.stderr);
    assertOneClearLine(r, /a\/en\/adapter_model\.safetensors: is a named pipe, not a regular file/);
  }
});

test("inspect of a .gguf path that is a named pipe: one line, no hang", () => {
  execFileSync("mkfifo", [join(tmp.dir, "p.gguf")]);
  const r = runCli(tmp.dir, "inspect", "p.gguf");
  assert.equal(r.status, 1, r.stderr);
  assertOneClearLine(r, /p\.gguf: is a named pipe, not a regular file/);
});
