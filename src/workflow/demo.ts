/**
 * The demo is the study: `merglot demo` runs data/demo/study.yaml (the seed's experiment on the embedded tiny
 * model and generated data, see data/demo/DATA_CARD.md) into a study folder, then writes its report. The folder
 * is the step cache, so a second run reuses every step and finishes in seconds.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MerglotError } from "../errors.js";
import { writeReport } from "../report/index.js";
import { runStudy, type RunSummary, type StudyEvent } from "../study/run.js";
import { loadStudy } from "../study/schema.js";

/** data/demo inside the installed package (three levels above dist/src/workflow). */
export const DEMO_DIR = fileURLToPath(new URL("../../../data/demo/", import.meta.url));
export const DEMO_STUDY = join(DEMO_DIR, "study.yaml");

export interface DemoOptions {
  /** The study folder (default merglot-demo). */
  output: string;
  /** Use an existing folder that is not a study folder (nothing in it is removed). */
  replaceForeign?: boolean;
  /** Steps run in parallel. */
  jobs?: number;
  onEvent?: (e: StudyEvent) => void;
}

export async function runDemo(opts: DemoOptions): Promise<{ summary: RunSummary; report: string[] }> {
  if (!existsSync(DEMO_STUDY))
    throw new MerglotError("demo.data", `${DEMO_STUDY}: the demo data is missing from this installation`);
  const out = opts.output;
  // A folder that already holds something else is never taken over silently: the study would write its
  // step cache among the user's files.
  if (
    existsSync(out) &&
    statSync(out).isDirectory() &&
    readdirSync(out).length > 0 &&
    !existsSync(join(out, "study.lock.json")) &&
    !opts.replaceForeign
  )
    throw new MerglotError(
      "output.exists",
      `${out}: already exists and is not a merglot demo output (no study.lock.json); choose another -o, or pass --force-replace-foreign to use it anyway`,
    );
  const study = loadStudy(DEMO_STUDY);
  const summary = await runStudy(study, {
    outDir: out,
    jobs: opts.jobs ?? 2,
    force: opts.replaceForeign,
    onEvent: opts.onEvent,
  });
  const report = summary.results ? await writeReport({ input: out }) : [];
  return { summary, report };
}
