/**
 * bench/inspect: `merglot inspect` (with ‖ΔW‖_F per module) on a synthetic Llama-3.1-8B-shaped r=64 bf16
 * adapter (~336 MB), against a plain sequential read of the same file, each in its own child process so
 * that peak RSS is the tool's own. Targets: throughput ≥ 0.5 × the plain read, peak RSS < 200 MB.
 *   node dist/bench/inspect.js [--keep DIR]
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectPath } from "../src/inspect/inspect.js";
import { writeSyntheticAdapter } from "./synthetic.js";

const self = fileURLToPath(import.meta.url);

function child(mode: string, path: string): { ms: number; maxRssMb: number } {
  const r = spawnSync(process.execPath, [self, "--child", mode, path], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { ms: number; maxRssMb: number };
}

if (process.argv[2] === "--child") {
  const [mode, path] = process.argv.slice(3) as [string, string];
  const t0 = performance.now();
  if (mode === "plain") {
    const fd = openSync(join(path, "adapter_model.safetensors"), "r");
    const buf = Buffer.allocUnsafe(8 << 20);
    let sum = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      sum += buf[n - 1]!;
    }
    closeSync(fd);
    if (sum < 0) console.log(sum);
  } else {
    const r = inspectPath(path);
    if (r.modules!.length !== 224) throw new Error(`expected 224 modules, got ${r.modules!.length}`);
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
} else {
  const keep = process.argv.indexOf("--keep");
  const dir = keep > 0 ? process.argv[keep + 1]! : mkdtempSync(join(tmpdir(), "merglot-bench-inspect-"));
  const adapter = join(dir, "llama8b-r64");
  if (!existsSync(adapter)) {
    const t = performance.now();
    writeSyntheticAdapter(adapter, { seed: 1 });
    console.log(`generated ${adapter} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const bytes = statSync(join(adapter, "adapter_model.safetensors")).size;
  const mb = bytes / 1e6;
  child("plain", adapter); // warm the page cache so both runs read from memory
  const plain = child("plain", adapter);
  const insp = child("inspect", adapter);
  const plain2 = child("plain", adapter);
  const plainMs = Math.min(plain.ms, plain2.ms);
  console.log(`file: ${mb.toFixed(1)} MB (224 modules, r=64, bf16)`);
  console.log(
    `plain sequential read: ${plainMs.toFixed(0)} ms, ${(mb / (plainMs / 1000)).toFixed(0)} MB/s, peak RSS ${plain.maxRssMb.toFixed(0)} MB`,
  );
  console.log(
    `merglot inspect:       ${insp.ms.toFixed(0)} ms, ${(mb / (insp.ms / 1000)).toFixed(0)} MB/s, peak RSS ${insp.maxRssMb.toFixed(0)} MB`,
  );
  console.log(
    `ratio inspect / plain read throughput: ${(plainMs / insp.ms).toFixed(2)} (target ≥ 0.5); peak RSS target < 200 MB`,
  );
  if (keep < 0) rmSync(dir, { recursive: true, force: true });
}
