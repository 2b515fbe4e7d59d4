#!/usr/bin/env node
/**
 * The `merglot` command: parses arguments, hands off to one command module, and turns input errors into one
 * clear line on stderr with a non-zero exit. `--debug` shows the stack trace as well.
 */
import { Command, CommanderError } from "commander";
import { isMerglotError } from "../errors.js";
import { enableSignalCleanup, interruptedBy, stopOnBrokenPipe } from "../output/debris.js";
import { describeFsError } from "../output/fs-errors.js";
import { VERSION } from "../version.js";
import { registerCommands } from "./commands.js";
import { printErr, printMessage, printOut } from "./terminal.js";

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name("merglot")
    .description("Build and maintain one multilingual LLM out of language-specific LoRA adapters.")
    .version(VERSION)
    .option("--debug", "show stack traces for errors")
    .exitOverride()
    .configureOutput({ writeErr: (s) => printErr(s), writeOut: (s) => printOut(s) });
  await registerCommands(program, argv);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    // interrupted: the signal handler reports and exits once the run has stopped
    if (interruptedBy() !== null) return new Promise<number>(() => undefined);
    if (e instanceof CommanderError) {
      // commander already printed its message (usage errors, --help, --version)
      return e.exitCode;
    }
    const debug = argv.includes("--debug");
    if (isMerglotError(e)) {
      printMessage(e.message);
      // multi-line context (a failed command's log tail), indented, control characters escaped
      if (e.detail) printErr(e.detail.replace(/^/gm, "  ") + "\n");
      if (debug && e.stack) printErr(`${e.stack}\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    if (err && typeof err.code === "string" && typeof err.path === "string") {
      // a file-system error: name the path and the problem, not the stack
      printMessage(`${err.path}: ${describeFsError(err)}`);
      if (debug && err.stack) printErr(`${err.stack}\n`);
      return 1;
    }
    printMessage(`internal error: ${err?.message ?? String(e)}`);
    printErr(debug && err?.stack ? `${err.stack}\n` : "(run with --debug for a stack trace)\n");
    return 2;
  }
}

// SIGINT / SIGTERM / SIGHUP while an output is being written: remove it, say so, exit 128 + the signal number.
enableSignalCleanup((signal, removed) =>
  process.stderr.write(
    `merglot: interrupted by ${signal}${removed ? "; the unfinished output was removed" : ""}\n`,
  ),
);

stopOnBrokenPipe(process.stdout);
stopOnBrokenPipe(process.stderr);

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    printMessage(`internal error: ${String(e)}`);
    process.exitCode = 2;
  },
);
