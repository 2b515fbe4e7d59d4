import type { Command } from "commander";
import { registerConvert } from "./convert.js";
import { registerData } from "./data.js";
import { registerDemo } from "./demo.js";
import { registerEval } from "./eval.js";
import { registerInspect } from "./inspect.js";
import { registerMerge } from "./merge.js";
import { registerPretrain } from "./pretrain.js";
import { registerReport } from "./report.js";
import { registerScore } from "./score.js";
import { registerSearch } from "./search.js";
import { registerTrain } from "./train.js";

/** Every subcommand, one module each. */
export function registerCommands(program: Command): void {
  registerInspect(program);
  registerMerge(program);
  registerConvert(program);
  registerTrain(program);
  registerPretrain(program);
  registerScore(program);
  registerEval(program);
  registerData(program);
  registerDemo(program);
  registerReport(program);
  registerSearch(program);
}
