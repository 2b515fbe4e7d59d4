/**
 * Builds real fault situations for the fault suite: adapters big enough for a merge to be caught mid-run,
 * child processes running the built CLI, size-limited and read-only tmpfs mounts, immutable files, and
 * content hashes of whole folders (to prove that inputs and old outputs are byte-identical afterwards).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeAdapter, type ModuleShape } from "../helpers/fixtures.js";

export const CLI = join(process.cwd(), "dist/src/cli/main.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `merglot ARGS` in `cwd` and wait for it. */
export function cli(cwd: string, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8" });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Start `merglot ARGS` in `cwd`; `done` resolves when it exits. */
export function startCli(
  cwd: string,
  ...args: string[]
): { pid: number; done: Promise<CliResult>; kill(s: NodeJS.Signals): void } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((res) =>
    child.on("close", (code, signal) => res({ code, signal, stdout, stderr })),
  );
  return { pid: child.pid!, done, kill: (s) => child.kill(s) };
}

/** Temp and trash names of merglot (src/output/debris.ts), in `dir`. */
export function debris(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^\..+\.(tmp|trash)-\d+-/.test(n));
}

/** Poll until `dir` holds an entry matching `re`, or throw when the child has exited first. */
export async function waitForEntry(
  dir: string,
  re: RegExp,
  run: { done: Promise<CliResult> },
): Promise<void> {
  let exited: CliResult | null = null;
  void run.done.then((r) => (exited = r));
  for (;;) {
    if (readdirSync(dir).some((n) => re.test(n))) return;
    if (exited) throw new Error(`the run ended before ${re} appeared: ${JSON.stringify(exited)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** sha256 of every file (and the target of every symlink) under `path`, by relative name. */
export function treeHash(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out[rel] = `link:${readlinkSync(p)}`;
    else if (st.isDirectory())
      for (const n of readdirSync(p).sort()) walk(join(p, n), rel ? `${rel}/${n}` : n);
    else out[rel] = createHash("sha256").update(readFileSync(p)).digest("hex");
  };
  walk(path, "");
  return out;
}

/** Many mid-sized modules: a TIES merge of three of these takes long enough to be interrupted. */
export const BIG_MODULES: ModuleShape[] = Array.from({ length: 120 }, (_, i) => ({
  name: `model.layers.${i}.self_attn.q_proj`,
  out: 128,
  in: 128,
  rank: 8,
}));

/**
 * Adapters a/en, a/de, a/fr under `dir` and a recipe r.yaml over them: TIES (dense, slow enough to be caught
 * mid-run) by default; `task_arithmetic` (exact low-rank, quick) when only the output's size matters.
 */
export function bigMergeSetup(
  dir: string,
  opts: { modules?: number; method?: "ties" | "task_arithmetic" } = {},
): void {
  mkdirSync(join(dir, "a"), { recursive: true });
  const modules = BIG_MODULES.slice(0, opts.modules ?? BIG_MODULES.length);
  ["en", "de", "fr"].forEach((l, i) => makeAdapter(join(dir, "a", l), { seed: i + 1, modules }));
  writeText(
    join(dir, "r.yaml"),
    `merge_method: ${opts.method ?? "ties"}\nmodels: [{model: a/en}, {model: a/de}, {model: a/fr}]\n` +
      (opts.method === "task_arithmetic" ? "" : "parameters: {density: 0.5}\n"),
  );
}

/** Two small adapters a/en, a/de and a TIES recipe r.yaml (the reproduction). */
export function smallMergeSetup(dir: string): void {
  makeAdapter(join(dir, "a", "en"), { seed: 1 });
  makeAdapter(join(dir, "a", "de"), { seed: 2 });
  writeText(join(dir, "r.yaml"), "merge_method: ties\nmodels: [{model: a/en}, {model: a/de}]\n");
}

function writeText(path: string, text: string): void {
  writeFileSync(path, text);
}

/** Why mounts cannot be made here, or null when they can (root with tmpfs support). */
export function mountUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root: tmpfs mounts need root (CI runs as root)";
  const probe = join(process.env.TMPDIR ?? "/tmp", `merglot-mount-probe-${process.pid}`);
  mkdirSync(probe, { recursive: true });
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]);
  if (m.status !== 0) return `mount -t tmpfs failed: ${String(m.stderr).trim()}`;
  spawnSync("umount", [probe]);
  spawnSync("rmdir", [probe]);
  return null;
}

/** Why `chattr +i` cannot be used here, or null. */
export function chattrUnavailable(dir: string): string | null {
  if (process.getuid?.() !== 0) return "not root: chattr +i needs CAP_LINUX_IMMUTABLE";
  const f = join(dir, `.chattr-probe-${process.pid}`);
  writeFileSync(f, "");
  const r = spawnSync("chattr", ["+i", f]);
  spawnSync("chattr", ["-i", f]);
  spawnSync("rm", ["-f", f]);
  return r.status === 0 ? null : `chattr +i failed: ${String(r.stderr ?? r.error).trim()}`;
}

/** Mount a tmpfs of `size` (e.g. "256k") on `dir`; returns the unmount function (safe to call twice). */
export function mountTmpfs(dir: string, size: string): () => void {
  mkdirSync(dir, { recursive: true });
  must("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  let mounted = true;
  return () => {
    if (!mounted) return;
    mounted = false;
    must("umount", [dir]);
  };
}

export function remountReadOnly(dir: string): void {
  must("mount", ["-o", "remount,ro", dir]);
}

export function chattr(flag: "+i" | "-i", path: string): void {
  must("chattr", [flag, path]);
}

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr || String(r.error)}`);
}

/** The lines a run printed on stderr. */
export function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.length > 0);
}
