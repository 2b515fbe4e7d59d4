/**
 * Jinja templates of task files (rendered with @huggingface/jinja, the engine that runs HF chat templates).
 * Compiled templates are cached by their source text.
 */
import { Template } from "@huggingface/jinja";
import { MerglotError } from "../errors.js";

const compiled = new Map<string, Template>();

function compile(source: string, where: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new MerglotError("task.template", `${where}: invalid Jinja template (${(e as Error).message})`);
    }
    compiled.set(source, t);
  }
  return t;
}

/** Render `source` with the variables `vars`; `where` names the template in errors. */
export function renderTemplate(source: string, vars: Record<string, unknown>, where: string): string {
  const t = compile(source, where);
  try {
    return t.render(vars);
  } catch (e) {
    throw new MerglotError("task.template", `${where}: ${(e as Error).message}`);
  }
}

/**
 * The value of a Jinja expression: `{{ choices }}` or a bare `choices` → the example's list. Evaluated by
 * rendering the expression through `tojson` and parsing the JSON.
 */
export function evaluateExpression(source: string, vars: Record<string, unknown>, where: string): unknown {
  const m = /^\s*\{\{-?\s*([\s\S]*?)\s*-?\}\}\s*$/.exec(source);
  const expr = m ? m[1]! : source.trim();
  const json = renderTemplate(`{{ (${expr}) | tojson }}`, vars, where);
  try {
    return JSON.parse(json);
  } catch {
    throw new MerglotError("task.template", `${where}: the expression "${expr}" does not give a list`);
  }
}
