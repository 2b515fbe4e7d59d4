import type { Command } from "commander";

type Register = (program: Command) => void;

/**
 * Every subcommand, one module each, loaded only when it runs. Importing all of them at start-up would load
 * every dependency of every command (the report's charts, the study, the engine…) on each call: slower, and
 * enough concurrently opened module files to exhaust a low `ulimit -n` before a merge opens its first adapter.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  inspect: async () => (await import("./inspect.js")).registerInspect,
  merge: async () => (await import("./merge.js")).registerMerge,
  convert: async () => (await import("./convert.js")).registerConvert,
  train: async () => (await import("./train.js")).registerTrain,
  pretrain: async () => (await import("./pretrain.js")).registerPretrain,
  score: async () => (await import("./score.js")).registerScore,
  eval: async () => (await import("./eval.js")).registerEval,
  data: async () => (await import("./data.js")).registerData,
  study: async () => (await import("./study.js")).registerStudy,
  demo: async () => (await import("./demo.js")).registerDemo,
  report: async () => (await import("./report.js")).registerReport,
  search: async () => (await import("./search.js")).registerSearch,
};

/** Register the command named in `argv` (the first word that is not an option), or all of them for help. */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const name = argv.slice(2).find((a) => !a.startsWith("-"));
  const names = name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
  for (const n of names) (await COMMANDS[n]!())(program);
}
