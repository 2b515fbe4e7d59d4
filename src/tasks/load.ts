/**
 * Finding and reading task files: a built-in task by name (the YAML files shipped in data/tasks/) or a user's
 * YAML file by path. The YAML text is kept with the parsed task, so that a result cache can key on the
 * task definition itself.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { MerglotError } from "../errors.js";
import { parseTaskDefinition, type TaskDefinition } from "./schema.js";

export interface Task {
  definition: TaskDefinition;
  /** Where it came from: the YAML path. */
  source: string;
  /** The YAML text as read. */
  text: string;
}

/** The folder of the built-in task files (dist/src/tasks → the package's data/tasks). */
export function builtinTaskDir(): string {
  return fileURLToPath(new URL("../../../data/tasks/", import.meta.url));
}

/** Names of the built-in tasks. */
export function builtinTaskNames(): string[] {
  const dir = builtinTaskDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => basename(f, ".yaml"))
    .sort();
}

/** Parse task YAML text; `where` names it in errors. */
export function parseTask(text: string, where: string): Task {
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    throw new MerglotError("task.yaml", `${where}: not valid YAML (${msg})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new MerglotError("task.yaml", `${where}: a task file must be a YAML mapping`);
  return { definition: parseTaskDefinition(raw, where), source: where, text };
}

/**
 * A task by built-in name (`sentiment`, `reasoning`, `summarization`, `extraction`) or by the path of a YAML
 * file. A name that is neither is an error listing the built-in tasks.
 */
export function loadTask(nameOrPath: string): Task {
  const looksLikePath = /[\\/]/.test(nameOrPath) || /\.ya?ml$/i.test(nameOrPath);
  if (looksLikePath || (existsSync(nameOrPath) && statSync(nameOrPath).isFile())) {
    if (!existsSync(nameOrPath)) throw new MerglotError("task.missing", `${nameOrPath}: no such task file`);
    if (!statSync(nameOrPath).isFile())
      throw new MerglotError("task.missing", `${nameOrPath}: a task must be a YAML file`);
    return parseTask(readFileSync(nameOrPath, "utf8"), nameOrPath);
  }
  const names = builtinTaskNames();
  if (!names.includes(nameOrPath)) {
    throw new MerglotError(
      "task.unknown",
      `unknown task "${escapeForMessage(nameOrPath)}" (built-in: ${names.join(", ")}; or give the path of a task YAML file)`,
    );
  }
  const path = join(builtinTaskDir(), `${nameOrPath}.yaml`);
  return parseTask(readFileSync(path, "utf8"), path);
}

/** The loader's column map for a task: built-in names load their real layouts; custom tasks map every field. */
export function loaderColumns(task: Task): Record<string, string> | undefined {
  const d = task.definition;
  const builtin = ["sentiment", "reasoning", "summarization", "extraction"].includes(d.task);
  if (builtin && Object.keys(d.columns).length === 0) return undefined;
  return Object.fromEntries(Object.keys(d.fields).map((f) => [f, d.columns[f] ?? f]));
}

/** Control characters of user input escaped before printing. */
export function escapeForMessage(s: string, max = 80): string {
  const cut = s.length > max ? s.slice(0, max) + "…" : s;
  return cut.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
