/**
 * File-system faults built for real (root: tmpfs mounts, `chattr +i`): a full disk, a read-only file system,
 * an immutable folder, an old output that cannot be deleted. Each run must print one line naming the user's
 * path and the cause (never a temp path, never the errno code twice), exit 1, leave the old output and the
 * inputs byte-identical and leave no temp path behind.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { describeFsError } from "../../src/output/fs-errors.js";
import { tempDir } from "../helpers/fixtures.js";
import { DEFAULT_TINY, randomWeights, writeTinyModel } from "../parity/tiny-llama.js";
import {
  bigMergeSetup,
  chattr,
  chattrUnavailable,
  cli,
  debris,
  lines,
  mountTmpfs,
  mountUnavailable,
  remountReadOnly,
  smallMergeSetup,
  treeHash,
} from "./helpers.js";

const tmp = tempDir("merglot-fs-faults-");
after(() => tmp.cleanup());
const dir = tmp.dir;
const small = join(dir, "s");
const big = join(dir, "b");
const model = join(dir, "model");
let inputs: Record<string, string>;

before(() => {
  smallMergeSetup(small);
  // 40 modules, output rank 24: about 1 MB of weights, more than the small tmpfs below holds
  bigMergeSetup(big, { modules: 40, method: "task_arithmetic" });
  writeTinyModel(model, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 3));
  inputs = { ...treeHash(small), ...treeHash(big), ...treeHash(model) };
});
const inputsIntact = () =>
  assert.deepEqual({ ...treeHash(small), ...treeHash(big), ...treeHash(model) }, inputs);

/** One line `merglot: <user path>: cannot write the output: <cause>` and exit 1. */
function failsWith(r: { code: number | null; stderr: string }, path: string, cause: string): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(lines(r.stderr).length, 1, r.stderr);
  assert.ok(
    r.stderr.startsWith(`merglot: ${path}: cannot write the output: ${cause}`),
    `expected "${path}: … ${cause}", got ${r.stderr}`,
  );
  // (the random temp-folder name of this test may hold capitals: look only at what follows the path)
  assert.doesNotMatch(
    r.stderr.slice(`merglot: ${path}`.length),
    /\.tmp-|E[A-Z]{3,}/,
    "no temp path, no errno code",
  );
}

const noMount = mountUnavailable();
if (noMount) console.log(`# skipping the tmpfs fault tests: ${noMount}`);

describe("a full disk (tmpfs with a size limit)", { skip: noMount ?? false }, () => {
  test("merge: refused before the work when the output cannot fit; the old output is kept", () => {
    const mnt = join(dir, "full");
    const unmount = mountTmpfs(mnt, "256k");
    try {
      assert.equal(cli(small, "merge", "r.yaml", "-o", join(mnt, "out")).code, 0);
      const old = treeHash(join(mnt, "out"));
      const r = cli(big, "merge", "r.yaml", "-o", join(mnt, "out"), "--force");
      failsWith(r, join(mnt, "out"), "no space left on device (needs ");
      assert.deepEqual(treeHash(join(mnt, "out")), old);
      assert.deepEqual(debris(mnt), []);
      inputsIntact();
    } finally {
      unmount();
    }
  });

  test("convert: the disk fills up mid-write; the old file is kept and no temp is left", () => {
    const probe = join(dir, "probe.gguf");
    assert.equal(cli(dir, "convert", model, "--to", "gguf", "-o", probe, "--dtype", "f32").code, 0);
    const size = statSync(probe).size;
    const mnt = join(dir, "half");
    // room for the old file and half of the new one
    const unmount = mountTmpfs(mnt, `${Math.ceil((size * 1.5) / 4096) * 4}k`);
    try {
      const out = join(mnt, "m.gguf");
      assert.equal(cli(dir, "convert", model, "--to", "gguf", "-o", out, "--dtype", "f32").code, 0);
      const old = treeHash(out);
      const r = cli(dir, "convert", model, "--to", "gguf", "-o", out, "--dtype", "f32", "--force");
      failsWith(r, out, "no space left on device");
      assert.deepEqual(treeHash(out), old);
      assert.deepEqual(debris(mnt), []);
      inputsIntact();
    } finally {
      unmount();
    }
  });
});

describe("a read-only file system", { skip: noMount ?? false }, () => {
  test("merge and convert name the output and say read-only; the old output is kept", () => {
    const mnt = join(dir, "ro");
    const unmount = mountTmpfs(mnt, "1m");
    try {
      assert.equal(cli(small, "merge", "r.yaml", "-o", join(mnt, "out")).code, 0);
      const old = treeHash(join(mnt, "out"));
      remountReadOnly(mnt);
      failsWith(
        cli(small, "merge", "r.yaml", "-o", join(mnt, "out"), "--force"),
        join(mnt, "out"),
        "read-only file system",
      );
      failsWith(
        cli(small, "merge", "r.yaml", "-o", join(mnt, "new")),
        join(mnt, "new"),
        "read-only file system",
      );
      failsWith(
        cli(small, "merge", "r.yaml", "-o", join(mnt, "deep", "er")),
        join(mnt, "deep", "er"),
        "read-only file system",
      );
      failsWith(
        cli(dir, "convert", model, "--to", "gguf", "-o", join(mnt, "m.gguf")),
        join(mnt, "m.gguf"),
        "read-only file system",
      );
      assert.deepEqual(treeHash(join(mnt, "out")), old);
      inputsIntact();
    } finally {
      unmount();
    }
  });
});

const noChattr = chattrUnavailable(dir);
if (noChattr) console.log(`# skipping the immutable-file fault tests: ${noChattr}`);

describe("immutable files and folders (chattr +i)", { skip: noChattr ?? false }, () => {
  test("an immutable parent folder: one line, operation not permitted", () => {
    const locked = join(dir, "locked");
    mkdirSync(locked);
    chattr("+i", locked);
    try {
      failsWith(
        cli(small, "merge", "r.yaml", "-o", join(locked, "out")),
        join(locked, "out"),
        "operation not permitted",
      );
    } finally {
      chattr("-i", locked);
    }
  });

  test("an old output that cannot be renamed away: refused, kept whole, temp removed", () => {
    const out = join(dir, "stuck");
    assert.equal(cli(small, "merge", "r.yaml", "-o", out).code, 0);
    const old = treeHash(out);
    chattr("+i", out);
    try {
      failsWith(cli(big, "merge", "r.yaml", "-o", out, "--force"), out, "operation not permitted");
      assert.deepEqual(treeHash(out), old);
      assert.deepEqual(debris(dir), []);
    } finally {
      chattr("-i", out);
    }
  });

  test("an old output that cannot be deleted: the new one is in place, the warning names the leftover", () => {
    const out = join(dir, "rep");
    assert.equal(cli(small, "merge", "r.yaml", "-o", out).code, 0);
    chattr("+i", join(out, "adapter_config.json"));
    let trash = "";
    try {
      const r = cli(big, "merge", "r.yaml", "-o", out, "--force");
      assert.equal(r.code, 0, r.stderr);
      const warn = lines(r.stderr);
      assert.equal(warn.length, 1, r.stderr);
      const m =
        /^merglot: warning: .*rep: replaced, but the previous output could not be deleted completely \(operation not permitted\): it is left at (.*\.rep\.trash-\d+-.*)$/.exec(
          warn[0]!,
        );
      assert.ok(m, warn[0]);
      trash = m[1]!;
      assert.ok(
        statSync(join(trash, "adapter_config.json")).isFile(),
        "the leftover is where the warning says",
      );
      // the new output is complete: the big merge's 40 modules
      const check = cli(dir, "inspect", out, "--json");
      assert.equal(check.code, 0, check.stderr);
      assert.equal((JSON.parse(check.stdout) as { modules: unknown[] }).modules.length, 40);
    } finally {
      // wherever the immutable file ended up, make it deletable again
      for (const p of [out, trash, ...debris(dir).map((n) => join(dir, n))])
        if (p && existsSync(join(p, "adapter_config.json"))) chattr("-i", join(p, "adapter_config.json"));
    }
    // that run has exited, so its trash is stale: the next run beside it removes it
    assert.equal(cli(small, "merge", "r.yaml", "-o", join(dir, "after")).code, 0);
    assert.deepEqual(debris(dir), []);
  });
});

describe("causes in words, without repeating the code", () => {
  test("real errors from the file system", () => {
    const full = join(dir, "notempty");
    mkdirSync(join(full, "x"), { recursive: true });
    const causeOf = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return describeFsError(e as NodeJS.ErrnoException);
      }
      throw new Error("no error");
    };
    assert.equal(
      causeOf(() => rmdirSync(full)),
      "directory not empty",
    );
    assert.equal(
      causeOf(() => statSync(join(dir, "missing"))),
      "no such file or directory",
    );
    assert.equal(
      causeOf(() => mkdirSync(full)),
      "already exists",
    );
    // a code without a known phrase: Node's words, without the code, the call or the path
    const odd = Object.assign(new Error("EWEIRD: something odd happened, open '/x/y'"), { code: "EWEIRD" });
    assert.equal(describeFsError(odd), "something odd happened");
  });
});
