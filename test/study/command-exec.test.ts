/**
 * The command executor end to end, with real processes only: `merglot study run` (the CLI) runs train steps as
 * a user's command, and `merglot train` itself is that command. The study folder's path holds a space and a
 * quote, so every path placeholder is exercised through the shell. Faults are real too: a command that exits 3,
 * one that writes nothing or a wrong adapter, one past its time limit, and a SIGINT while the command runs.
 * Last, a GGUF base: trained by the command from its HF checkpoint, evaluated by llama.cpp.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { convertModelToGguf } from "../../src/formats/convert.js";
import { shellQuote } from "../../src/study/command.js";
import { tempDir } from "../helpers/fixtures.js";
import { writeByteModel } from "../tasks/tiny-model.js";
import {
  LANGS,
  makeStudyFixture,
  MERGLOT_TRAIN,
  sentimentRows,
  tinyTaskYaml,
  type StudyFixture,
} from "./fixture.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");

function runCli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Lock {
  steps: Record<
    string,
    { kind: string; key: string; status: string; device?: string; tokens?: number | null }
  >;
}
const readLock = (out: string) => JSON.parse(readFileSync(join(out, "study.lock.json"), "utf8")) as Lock;
const stepFolder = (out: string, id: string) => join(out, "steps", readLock(out).steps[id]!.key);
const tempsIn = (out: string) =>
  existsSync(join(out, "steps")) ? readdirSync(join(out, "steps")).filter((n) => n.startsWith(".")) : [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, ok: () => boolean, limitMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > limitMs) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the command executor, with merglot train as the external command", () => {
  const tmp = tempDir("merglot cmd it's-");
  let fx: StudyFixture;
  let plain: string;
  /** Rewrite study.yaml with this train executor (YAML of its members, one per line). */
  const useExecutor = (members: Record<string, unknown> | null) => {
    const yaml = members
      ? "executors:\n  train:\n    kind: command\n" +
        Object.entries(members)
          .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}\n`)
          .join("")
      : "";
    writeFileSync(fx.studyPath, plain + yaml);
  };
  before(() => {
    fx = makeStudyFixture(tmp.dir);
    plain = readFileSync(fx.studyPath, "utf8");
  });
  after(() => tmp.cleanup());

  test("the study runs end to end; adapters equal the local executor's byte for byte, metrics too", () => {
    useExecutor(null);
    const local = runCli(["study", "run", "study.yaml", "-o", "local", "--json"], tmp.dir);
    assert.equal(local.status, 0, local.stderr);
    useExecutor({ command: MERGLOT_TRAIN, device: "a100" });
    // --jobs 2: command steps run from the study process itself, the rest in workers
    const cmd = runCli(["study", "run", "study.yaml", "-o", "cmd", "--jobs", "2", "--json"], tmp.dir);
    assert.equal(cmd.status, 0, cmd.stderr);

    const L = join(tmp.dir, "local");
    const C = join(tmp.dir, "cmd");
    const trains = Object.entries(readLock(C).steps).filter(([, s]) => s.kind === "train");
    assert.deepEqual(trains.map(([id]) => id).sort(), [
      "train/sentiment/combined",
      "train/sentiment/de",
      "train/sentiment/en",
      "train/sentiment/fr",
    ]);
    for (const [id, s] of trains) {
      for (const f of ["adapter_model.safetensors", "adapter_config.json"])
        assert.ok(
          readFileSync(join(C, "steps", s.key, "adapter", f)).equals(
            readFileSync(join(stepFolder(L, id), "adapter", f)),
          ),
          `${id}: ${f} differs from the local executor's`,
        );
      assert.equal(s.status, "done");
      assert.equal(s.device, "a100");
      assert.equal(s.tokens, readLock(L).steps[id]!.tokens, `${id}: tokens from training_log.json`);
      const record = JSON.parse(readFileSync(join(C, "steps", s.key, "step.json"), "utf8"));
      assert.equal(record.executor, "command");
      // what the command saw and said stays with the step
      assert.match(readFileSync(join(C, "steps", s.key, "command.log"), "utf8"), /"totalSteps"/);
      for (const line of readFileSync(join(C, "steps", s.key, "inputs/pairs/train.jsonl"), "utf8")
        .trim()
        .split("\n")) {
        const row = JSON.parse(line);
        assert.deepEqual(Object.keys(row), ["prompt", "completion"], "TRL's standard prompt-completion rows");
        assert.equal(typeof row.prompt, "string");
        assert.equal(typeof row.completion, "string");
      }
    }
    const a = JSON.parse(readFileSync(join(L, "results.json"), "utf8"));
    const b = JSON.parse(readFileSync(join(C, "results.json"), "utf8"));
    assert.deepEqual(b.results, a.results);
    assert.deepEqual(b.study.executors.train, { kind: "command", device: "a100" });
    assert.deepEqual(tempsIn(C), []);
  });

  test("a failing command: its exit code and log tail, the step not done; fixing the template resumes", () => {
    useExecutor({
      command: 'echo starting {step_id}; echo "it broke: no such flag --lora_rnak" >&2; exit 3',
    });
    const out = join(tmp.dir, "failing");
    const r = runCli(["study", "run", "study.yaml", "-o", "failing"], tmp.dir);
    assert.equal(r.status, 1);
    const log = join(out, "logs", "train", "sentiment", "en.log");
    assert.ok(
      r.stderr.includes(
        `merglot: step train/sentiment/en: the training command exited with code 3; its log: ${log}\n`,
      ),
      r.stderr,
    );
    assert.match(r.stderr, /\n {2}starting train\/sentiment\/en\n {2}it broke: no such flag --lora_rnak\n/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
    assert.match(readFileSync(log, "utf8"), /starting train\/sentiment\/en\nit broke/);
    const lock = readLock(out);
    assert.equal(lock.steps["train/sentiment/en"]!.status, "failed");
    assert.ok(!existsSync(stepFolder(out, "train/sentiment/en")));
    assert.deepEqual(tempsIn(out), []);
    assert.ok(!existsSync(join(out, "results.json")), "a failed run writes no results");

    useExecutor({ command: MERGLOT_TRAIN });
    const again = runCli(["study", "run", "study.yaml", "-o", "failing", "--json"], tmp.dir);
    assert.equal(again.status, 0, again.stderr);
    const summary = JSON.parse(again.stdout) as { cached: string[]; ran: string[] };
    assert.deepEqual(summary.cached.sort(), [
      "prepare/sentiment/de",
      "prepare/sentiment/en",
      "prepare/sentiment/fr",
    ]);
    assert.ok(summary.ran.includes("train/sentiment/en"));
    assert.ok(!existsSync(log), "the stale failure log is gone once the step succeeds");
  });

  test("a command that writes nothing, a wrong rank or wrong targets: a clear error, the step not done", () => {
    const cases: [string, RegExp][] = [
      ["true", /the training command succeeded but no adapter was written: \{output_dir\} does not exist/],
      [
        `${MERGLOT_TRAIN} --r 2`,
        /the training command succeeded but \{output_dir\}\/adapter_config\.json: r is 2, but the study trains rank 4 \(training\.r\)/,
      ],
      [
        `${MERGLOT_TRAIN} --targets q_proj,v_proj`,
        /adapter_config\.json: target_modules \["q_proj","v_proj"\] does not cover model\.layers\.0\.self_attn\.k_proj, but the study targets all-linear/,
      ],
    ];
    cases.forEach(([command, pattern], i) => {
      useExecutor({ command });
      const r = runCli(
        ["study", "run", "study.yaml", "-o", `wrong${i}`, "--only", "train/sentiment/en"],
        tmp.dir,
      );
      assert.equal(r.status, 1, command);
      assert.match(r.stderr, /\nmerglot: step train\/sentiment\/en: /);
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, /; its log: .*logs\/train\/sentiment\/en\.log\n/);
      const out = join(tmp.dir, `wrong${i}`);
      assert.equal(readLock(out).steps["train/sentiment/en"]!.status, "failed");
      assert.ok(!existsSync(stepFolder(out, "train/sentiment/en")));
    });
  });

  test("tokens and loss come from TRL's trainer_state.json when the trainer writes no training_log.json", () => {
    // merglot train's adapter dressed as TRL leaves it: no training_log.json, a checkpoint with its state
    const state = JSON.stringify({
      log_history: [
        { step: 1, loss: 0.9, num_tokens: 100 },
        { step: 2, loss: 0.4, num_tokens: 200 },
        { step: 2, train_runtime: 1.5 },
      ],
    });
    useExecutor({
      command:
        `${MERGLOT_TRAIN} && rm {output_dir}/training_log.json && mkdir {output_dir}/checkpoint-2 && ` +
        `printf '%s' ${shellQuote(state)} > {output_dir}/checkpoint-2/trainer_state.json`,
    });
    const r = runCli(
      ["study", "run", "study.yaml", "-o", "trl-like", "--only", "train/sentiment/en"],
      tmp.dir,
    );
    assert.equal(r.status, 0, r.stderr);
    const out = join(tmp.dir, "trl-like");
    const record = JSON.parse(readFileSync(join(stepFolder(out, "train/sentiment/en"), "step.json"), "utf8"));
    assert.equal(record.tokens, 200);
    assert.equal(record.info.finalLoss, 0.4);
  });

  test("a command past its time limit is stopped and the step fails, naming the limit", () => {
    useExecutor({ command: "sleep 60", timeout: 1 });
    const r = runCli(["study", "run", "study.yaml", "-o", "slow", "--only", "train/sentiment/en"], tmp.dir);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /step train\/sentiment\/en: the training command ran past its time limit of 1 s \(executors\.train\.timeout\) and was stopped/,
    );
  });

  test("SIGINT while the command runs: the whole process group ends, nothing is left, the study resumes", async () => {
    const pids = join(tmp.dir, "pids.txt");
    // the shell and a background child of it record their pids, then wait
    useExecutor({ command: 'echo $$ >> "$PIDS"; sleep 120 & echo $! >> "$PIDS"; wait', env: { PIDS: pids } });
    const out = join(tmp.dir, "interrupted");
    const child = spawn(
      process.execPath,
      [CLI, "study", "run", "study.yaml", "-o", "interrupted", "--json"],
      {
        cwd: tmp.dir,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
    await until(
      "the command's two pids",
      () => existsSync(pids) && readFileSync(pids, "utf8").trim().split("\n").length === 2,
    );
    const group = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    assert.ok(group.every(alive));
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /merglot: interrupted by SIGINT/);
    await until("the command's processes to end", () => !group.some(alive), 10_000);
    assert.deepEqual(tempsIn(out), [], "the step's temp folder was removed");
    const st = runCli(["study", "status", "interrupted", "--json"], tmp.dir);
    const status = JSON.parse(st.stdout) as { steps: { id: string; status: string }[] };
    assert.equal(status.steps.find((s) => s.id === "train/sentiment/en")!.status, "interrupted");

    useExecutor({ command: MERGLOT_TRAIN });
    const again = runCli(
      ["study", "run", "study.yaml", "-o", "interrupted", "--only", "train/sentiment/en", "--json"],
      tmp.dir,
    );
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as { ran: string[] }).ran, ["train/sentiment/en"]);
  });
});

describe("a GGUF base with a training command", () => {
  const tmp = tempDir("merglot-cmd-gguf-");
  after(() => tmp.cleanup());

  test("the command trains from the HF checkpoint, adapters are checked against the GGUF, llama.cpp evaluates", () => {
    const dir = tmp.dir;
    // a byte-level model (llama.cpp's export needs a BPE tokenizer) and its GGUF
    writeByteModel(join(dir, "hf"), 5);
    convertModelToGguf(join(dir, "hf"), join(dir, "base.gguf"), { dtype: "F32" });
    LANGS.forEach((lang, i) => {
      mkdirSync(join(dir, "data", lang), { recursive: true });
      writeFileSync(join(dir, "data", lang, "train.jsonl"), sentimentRows(lang, 12, 100 + i, "train"));
      writeFileSync(join(dir, "data", lang, "test.jsonl"), sentimentRows(lang, 6, 200 + i, "test"));
    });
    writeFileSync(join(dir, "task.yaml"), tinyTaskYaml("tiny_sentiment", "Text: {{ text }}\\nSentiment:"));
    const command = MERGLOT_TRAIN.replace("--base {base_model}", "--base hf");
    writeFileSync(
      join(dir, "study.yaml"),
      `name: gguf
base_model: ./base.gguf
languages: [${LANGS.join(", ")}]
tasks:
  sentiment:
    task_file: task.yaml
    data:
${LANGS.map((l) => `      ${l}: { train: data/${l}/train.jsonl, test: data/${l}/test.jsonl }`).join("\n")}
training: { r: 4, alpha: 8, lr: 0.05, batch: 4, seq_len: 32, epochs: 3, seed: 1 }
baselines: [per_language]
merges: { methods: [ties], sets: [{ weight: 1, density: 0.5 }] }
evaluation: { bootstrap: 50 }
executors:
  train: { kind: command, command: ${JSON.stringify(command)} }
`,
    );
    const r = runCli(["study", "run", "study.yaml", "-o", "out", "--json"], dir);
    assert.equal(r.status, 0, r.stderr);
    const out = join(dir, "out");
    const lock = readLock(out) as Lock & {
      steps: Record<string, { inputs: { files: Record<string, { path: string }> } }>;
    };
    assert.equal(
      lock.steps["evaluate/sentiment/de/per_language"]!.inputs.files.base!.path,
      join(dir, "base.gguf"),
    );
    for (const l of LANGS) assert.equal(lock.steps[`train/sentiment/${l}`]!.status, "done");
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
      results: { variant: string; lang: string; n: number }[];
    };
    for (const l of LANGS)
      assert.equal(results.results.find((x) => x.variant === "per_language" && x.lang === l)!.n, 6);
  });
});
