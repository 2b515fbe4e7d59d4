import type { Command } from "commander";
import { registerDemo } from "./demo.js";
import { registerInspect } from "./inspect.js";
import { registerMerge } from "./merge.js";
import { registerScore } from "./score.js";

/** Every subcommand, one module each. */
export function registerCommands(program: Command): void {
  registerInspect(program);
  registerMerge(program);
  registerScore(program);
  registerDemo(program);
}
