/**
 * `merglot … | head`: the reader closes the pipe after the first lines. Node ignores SIGPIPE, so an unhandled
 * EPIPE used to end the run with a stream-error stack trace on stderr. Now the run stops quietly with 141
 * (128 + SIGPIPE, what a C tool killed by SIGPIPE reports), like any Unix tool. Real process, real pipe.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import { tempDir } from "../helpers/fixtures.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
const tmp = tempDir("merglot-pipe-");
after(() => tmp.cleanup());
const file = join(tmp.dir, "many.safetensors");

before(() => {
  // 20,000 tensors: the listing is ~1 MB, far more than a pipe buffer, so writes continue after the close
  const tensors = Array.from({ length: 20_000 }, (_, i) => ({
    name: `layers.${i}.weight`,
    dtype: "F32" as const,
    shape: [1],
    data: new Float32Array(1),
  }));
  writeSafetensors(file, tensors);
});

/** Run `merglot ARGS`, close its stdout after the first chunk, return its exit code and stderr. */
function readFirstChunkThenClose(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.stdout.once("data", () => child.stdout.destroy());
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

for (const extra of [[], ["--json"]]) {
  test(`inspect ${extra.join(" ")} | head: exit 141, nothing on stderr`, async () => {
    const r = await readFirstChunkThenClose("inspect", file, ...extra);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 141);
  });
}
