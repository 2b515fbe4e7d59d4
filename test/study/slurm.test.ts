/**
 * The slurm executor against a real Slurm: a single-node cluster (slurmctld + slurmd + munged on
 * 127.0.0.1) started by scripts/slurm-local/start.sh from Debian's slurm-wlm and munge, stopped by PID at the
 * end. No mock: real sbatch / squeue / scontrol / scancel, real jobs, real signals.
 *
 * Without Slurm installed this test FAILS (it is not skipped): CI installs the packages (.ci/run); locally
 * run `apt-get install -y slurm-wlm munge` as root.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture, MERGLOT_TRAIN, type StudyFixture } from "./fixture.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
const START = join(process.cwd(), "scripts/slurm-local/start.sh");
const STOP = join(process.cwd(), "scripts/slurm-local/stop.sh");
/** Files that record timings (wall clock) and so differ between any two runs. */
const TIMED = new Set(["step.json", "training_log.json", "merge_manifest.json"]);

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd} || test -x /usr/sbin/${cmd}`]).status === 0;
}

interface Jobs {
  jobs: Record<string, { step: string; job: string; log: string }>;
}

function readJobs(out: string): Jobs | null {
  try {
    return JSON.parse(readFileSync(join(out, "slurm", "jobs.json"), "utf8")) as Jobs;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe("slurm executor on a real single-node Slurm cluster", () => {
  const tmp = tempDir("merglot-slurm-");
  const cluster = join(tmp.dir, "cluster");
  // own ports: another cluster (a developer's, another test run) may use the default ones
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MERGLOT_SLURM_DIR: cluster,
    MERGLOT_SLURM_CTLD_PORT: String(port),
    MERGLOT_SLURM_SLURMD_PORT: String(port + 1),
    SLURM_CONF: join(cluster, "slurm.conf"),
    MERGLOT_SLURM_POLL_S: "1",
    // the jobs are tiny (one CPU each, mostly Node starting): let four run at once even on two cores
    MERGLOT_SLURM_CPUS: "4",
  };
  let fx: StudyFixture;
  /** A copy of the fixture's study.yaml with more YAML appended (same base model and data paths). */
  const variant = (name: string, extra: string) => {
    const p = join(fx.dir, `${name}.yaml`);
    writeFileSync(p, readFileSync(fx.studyPath, "utf8") + extra + "\n");
    return p;
  };
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], {
      encoding: "utf8",
      env: { ...env, ...extraEnv },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const cliAsync = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((res) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("exit", (status) => res({ status, stderr }));
    });
  const queued = (): string[] => {
    const r = spawnSync("squeue", ["--me", "-h", "-r", "-o", "%i"], { encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter((l) => l.trim() !== "");
  };

  /** Which of `ids` are still in squeue after a cancel (a running job leaves once killed: KillWait 2 s). */
  const stillQueued = async (ids: string[]) => {
    let left = ids;
    for (let i = 0; i < 100 && left.length; i++) {
      const live = queued();
      left = ids.filter((j) => live.includes(j));
      if (left.length) await sleep(200);
    }
    return left;
  };

  before(() => {
    assert.ok(
      hasCommand("sbatch") && hasCommand("slurmctld") && hasCommand("munged"),
      "Slurm is not installed: this test needs a real Slurm. Install it as root with `apt-get install -y slurm-wlm munge` (CI does this in .ci/run)",
    );
    const r = spawnSync(START, [], { encoding: "utf8", env });
    assert.equal(r.status, 0, `start.sh failed: ${r.stderr}`);
    fx = makeStudyFixture(join(tmp.dir, "fx"));
  });
  after(() => {
    spawnSync(STOP, [], { env });
    tmp.cleanup();
  });

  test("the study through Slurm equals the local run byte for byte; a run killed -9 re-attaches to its jobs", async () => {
    const ref = join(tmp.dir, "ref");
    const local = cli(["study", "run", fx.studyPath, "-o", ref, "--json"]);
    assert.equal(local.status, 0, local.stderr);

    // prepare steps stay local (seconds of work): a study mixes executors
    const study = variant(
      "slurm",
      "executor: { kind: slurm, cpus: 1 }\nexecutors: { prepare: { kind: local } }",
    );
    const out = join(tmp.dir, "slurm");
    const child = spawn(process.execPath, [CLI, "study", "run", study, "-o", out], { env, stdio: "ignore" });
    // Kill the parent (SIGKILL: no handler runs) once part of the study is submitted and not yet done.
    let before: Jobs | null = null;
    for (let i = 0; i < 600 && !before; i++) {
      await sleep(100);
      const j = readJobs(out);
      // all 21 jobs (prepare runs here): the killed run's scripts carry the dependencies
      if (j && Object.keys(j.jobs).length === 21) before = j;
    }
    assert.ok(before, "the study submitted no jobs within 60 s");
    child.kill("SIGKILL");
    await new Promise((res) => child.once("exit", res));
    const live = queued();
    const ours = Object.values(before.jobs).map((j) => j.job);
    assert.ok(
      ours.some((j) => live.includes(j)),
      `no job of the killed study is queued or running: ${live.join(" ")}`,
    );

    const resumed = cli(["study", "run", study, "-o", out, "--json"]);
    assert.equal(resumed.status, 0, resumed.stderr);
    const after = readJobs(out)!;
    // Never submitted twice: every step the killed run had submitted kept its job.
    for (const [key, j] of Object.entries(before.jobs))
      assert.equal(after.jobs[key]?.job, j.job, `${j.step} was submitted again`);

    const refSteps = join(ref, "steps");
    const outSteps = join(out, "steps");
    assert.deepEqual(readdirSync(outSteps).sort(), readdirSync(refSteps).sort(), "the same step keys");
    const all = files(refSteps);
    assert.deepEqual(files(outSteps), all);
    for (const f of all) {
      const name = f.split("/").pop()!;
      if (TIMED.has(name)) continue;
      assert.ok(
        readFileSync(join(outSteps, f)).equals(readFileSync(join(refSteps, f))),
        `${f} differs between the local and the Slurm run`,
      );
    }
    // Every step but prepare ran in a Slurm job (the record names it) and is in the job list.
    for (const key of readdirSync(outSteps)) {
      const rec = JSON.parse(readFileSync(join(outSteps, key, "step.json"), "utf8")) as {
        kind: string;
        executor: string;
        info: { slurmJob?: string };
      };
      if (rec.kind === "prepare") {
        assert.equal(rec.executor, "local");
        continue;
      }
      assert.equal(rec.executor, "slurm");
      assert.match(rec.info.slurmJob ?? "", /^\d+$/);
      assert.ok(after.jobs[key], `step ${key} is not in slurm/jobs.json`);
    }
    const metrics = (dir: string) =>
      (JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as { results: unknown[] }).results;
    assert.deepEqual(metrics(out), metrics(ref));
    // The generated scripts stay for the user: the trainings of the task are one job array (its inputs were
    // prepared locally: it waits for nothing); a merge waits for the three per-language tasks of the array.
    const scripts = join(out, "slurm", "scripts");
    const train = readFileSync(join(scripts, "train-sentiment.sh"), "utf8");
    assert.match(train, /^#SBATCH --array=0-3$/m);
    assert.match(train, /^#SBATCH --cpus-per-task=1$/m);
    assert.doesNotMatch(train, /--dependency/);
    // every dependency names a job of this study (array tasks as ID_INDEX)
    const ids = new Set(Object.values(after.jobs).map((j) => j.job));
    for (const f of readdirSync(scripts)) {
      const dep = /^#SBATCH --dependency=afterok:(\S+)$/m.exec(readFileSync(join(scripts, f), "utf8"));
      for (const id of dep ? dep[1]!.split(":") : []) assert.ok(ids.has(id), `${f} waits for ${id}`);
    }

    // A third run finds everything done: nothing submitted.
    const again = cli(["study", "run", study, "-o", out, "--json"]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as { ran: string[] }).ran, []);
    assert.deepEqual(readJobs(out), after);
  });

  test("a training command inside the Slurm jobs (merglot train as the command): adapters equal the local run's", () => {
    const ref = join(tmp.dir, "ref-command");
    const local = cli(["study", "run", fx.studyPath, "-o", ref, "--only", "train/**"]);
    assert.equal(local.status, 0, local.stderr);
    const study = variant(
      "slurm-command",
      `executors: { train: { kind: slurm, cpus: 1, command: ${JSON.stringify(MERGLOT_TRAIN)} } }`,
    );
    const out = join(tmp.dir, "slurm-command");
    const r = cli(["study", "run", study, "-o", out, "--only", "train/**"]);
    assert.equal(r.status, 0, r.stderr);
    /** Step id → folder of every finished train step (the command is part of the key, so keys differ). */
    const trainSteps = (dir: string) => {
      const m = new Map<string, string>();
      for (const key of readdirSync(join(dir, "steps"))) {
        const rec = JSON.parse(readFileSync(join(dir, "steps", key, "step.json"), "utf8")) as {
          id: string;
          kind: string;
          executor: string;
          info: { slurmJob?: string };
        };
        if (rec.kind !== "train") continue;
        if (dir === out) {
          assert.equal(rec.executor, "slurm");
          assert.match(rec.info.slurmJob ?? "", /^\d+$/);
        }
        m.set(rec.id, join(dir, "steps", key));
      }
      return m;
    };
    const mine = trainSteps(out);
    const theirs = trainSteps(ref);
    assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort());
    assert.equal(mine.size, 4);
    for (const [id, dir] of mine) {
      for (const f of ["adapter_model.safetensors", "adapter_config.json"])
        assert.ok(
          readFileSync(join(dir, "adapter", f)).equals(readFileSync(join(theirs.get(id)!, "adapter", f))),
          `${id}: ${f} differs from the local run's`,
        );
      // the command's own log stays with the step
      assert.ok(existsSync(join(dir, "command.log")), `${id}: no command.log`);
    }
  });

  test("a failing step and a job over its memory: each named with its job id and log; finished steps kept", async () => {
    // The training holds 200 MB for 30 s (a user's command inside the job): Slurm samples memory every
    // second, so the kill does not depend on how fast this machine trains (merglot's own tiny training
    // can end before the first sample).
    const hog = `${process.execPath} -e 'const b = Buffer.alloc(209715200, 1); setTimeout(() => b.length, 30000)'`;
    const oomStudy = variant(
      "oom",
      [
        "executor: { kind: slurm }",
        `executors: { train: { kind: slurm, mem: 20M, command: ${JSON.stringify(hog)} } }`,
      ].join("\n"),
    );
    // Non-zero exit: a target module the engine does not have (the fixture's training line, amended).
    const badStudy = join(fx.dir, "bad-targets.yaml");
    writeFileSync(
      badStudy,
      readFileSync(fx.studyPath, "utf8").replace(
        /^training: \{ /m,
        'training: { target_modules: ["no_such_proj"], ',
      ) + "executor: { kind: slurm }\n",
    );
    const oomOut = join(tmp.dir, "oom");
    const badOut = join(tmp.dir, "bad");
    // both at once: the test's time is mostly Slurm starting jobs
    const [r, r2] = await Promise.all([
      cliAsync(["study", "run", oomStudy, "-o", oomOut, "--only", "train/sentiment/en"]),
      cliAsync(["study", "run", badStudy, "-o", badOut, "--only", "train/sentiment/en"]),
    ]);
    assert.equal(r.status, 1, r.stderr);
    // 20 MB is less than Node itself needs: Slurm's memory enforcement kills the job
    assert.match(
      r.stderr,
      /^merglot: step train\/sentiment\/en: Slurm job \d+_0 was killed for using more memory than it asked for \(mem: 20M\); log \S+train-sentiment-\d+_0\.log ends with: .*exceeded (job )?memory limit/im,
    );
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(
      r2.stderr,
      /^merglot: step train\/sentiment\/en: Slurm job \d+_0 failed with exit code 1; log \S+ ends with: .*merglot: step train\/sentiment\/en: unknown LoRA target module "no_such_proj"/m,
    );
    // the prepare step finished before: kept and recorded; the failure is recorded with its job
    for (const out of [oomOut, badOut]) {
      const lock = JSON.parse(readFileSync(join(out, "study.lock.json"), "utf8")) as {
        steps: Record<string, { status: string; error?: string }>;
      };
      assert.equal(lock.steps["prepare/sentiment/en"]!.status, "done");
      assert.equal(lock.steps["train/sentiment/en"]!.status, "failed");
      assert.match(lock.steps["train/sentiment/en"]!.error!, /Slurm job \d+_0/);
      assert.deepEqual(readdirSync(join(out, "slurm", "tmp")), [], "a failed job's temp folder is left");
    }
  });

  test("Ctrl-C cancels the study's jobs; the study resumes", async () => {
    const study = variant("interrupted", "executor: { kind: slurm }");
    const out = join(tmp.dir, "interrupted");
    const only = "train/sentiment/de";
    const child = spawn(process.execPath, [CLI, "study", "run", study, "-o", out, "--only", only], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let jobs: Jobs | null = null;
    for (let i = 0; i < 600 && !jobs; i++) {
      await sleep(100);
      const j = readJobs(out);
      if (j && Object.keys(j.jobs).length === 2) jobs = j;
    }
    assert.ok(jobs, "the study did not submit its 2 jobs within 60 s");
    // the training waits for the job preparing its data
    const prep = Object.values(jobs.jobs).find((j) => j.step === "prepare/sentiment/de")!.job;
    assert.match(
      readFileSync(join(out, "slurm", "scripts", "train-sentiment.sh"), "utf8"),
      new RegExp(`^#SBATCH --dependency=afterok:${prep}$`, "m"),
    );
    await sleep(300); // its watcher (and signal handler) is set up right after the submission
    child.kill("SIGINT");
    const code = await new Promise((res) => child.once("exit", (c) => res(c)));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /slurm: cancelled \d job\(s\) of the study; run it again to resume/);
    const ours = Object.values(jobs.jobs).map((j) => j.job);
    assert.deepEqual(await stillQueued(ours), [], "jobs of the interrupted study are still queued");
    const resumed = cli(["study", "run", study, "-o", out, "--only", only, "--json"]);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.ok(existsSync(join(out, "results.json")));
  });

  test("Slurm unreachable or missing: a clear error, nothing submitted", () => {
    const study = variant("unreachable", "executor: { kind: slurm }");
    // a controller that is not there: the conf names a port nobody listens on
    const conf = join(tmp.dir, "dead.conf");
    writeFileSync(
      conf,
      readFileSync(join(cluster, "slurm.conf"), "utf8").replace(
        /^SlurmctldPort=\d+$/m,
        `SlurmctldPort=${port + 2}`,
      ),
    );
    const r = cli(["study", "run", study, "-o", join(tmp.dir, "unreachable")], { SLURM_CONF: conf });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^merglot: Slurm unreachable: squeue failed: .+\n$/m);
    // no Slurm commands on PATH
    const r2 = cli(["study", "run", study, "-o", join(tmp.dir, "no-slurm")], { PATH: "/nonexistent" });
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(
      r2.stderr,
      /^merglot: Slurm unreachable: squeue: command not found: the slurm executor needs Slurm's client commands \(sbatch, squeue, scontrol, scancel\) on PATH\n$/m,
    );
  });

  test("a compute node that cannot see the study folder: a clear error, the study's jobs cancelled", async () => {
    // The jobs run as nobody (root may submit for another user), who cannot enter the test's 0700 folder:
    // to them the study folder does not exist, as on a node that does not mount it.
    const study = variant("unshared", 'executor: { kind: slurm, sbatch: ["--uid=65534"] }');
    const out = join(tmp.dir, "unshared");
    const r = cli(["study", "run", study, "-o", out, "--only", "train/sentiment/en"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /^merglot: Slurm job \d+ \(the shared file system check, partition \(default\)\) could not see \S+ \(job state FAILED\): the study folder \S+ must be on a file system shared by this machine and the compute nodes$/m,
    );
    const ours = Object.values(readJobs(out)!.jobs).map((j) => j.job);
    assert.deepEqual(await stillQueued(ours), [], "jobs of the study are still queued");
  });
});
