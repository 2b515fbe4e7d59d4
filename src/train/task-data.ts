/**
 * Training data from a task: canonical examples → prompt/completion pairs through the very function
 * evaluation uses (src/tasks/render.ts), so an adapter is trained on exactly the prompts it is scored on.
 * prompt = the rendered model input (after the chat template, BOS left to the tokenizer as at evaluation);
 * completion = the gold answer as the model should write it (the gold choice's continuation, or the
 * reference text after the task's delimiter).
 */
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import type { ChatFormat } from "../tasks/chat.js";
import type { Task } from "../tasks/load.js";
import { renderExample } from "../tasks/render.js";
import type { PromptCompletion } from "./data.js";

export interface TaskPairOptions {
  /** Render every example in this language; default: each example's own `lang` (multilingual training). */
  lang?: string;
  /** The base model's chat format (null: plain prompts). */
  chat: ChatFormat | null;
  /** Where the examples come from, for error messages. */
  where?: string;
}

export function taskTrainingPairs(
  task: Task,
  examples: readonly Example[],
  o: TaskPairOptions,
): PromptCompletion[] {
  if (examples.length === 0) throw new MerglotError("data.empty", `${o.where ?? "data"}: no examples`);
  return examples.map((ex) => {
    const r = renderExample(task, ex, { lang: o.lang ?? ex.lang, chat: o.chat, where: o.where });
    if (r.completion.trim() === "") {
      throw new MerglotError(
        "data.field",
        `${o.where ?? "data"}: example ${r.id} has no gold answer to train on (task ${task.definition.task})`,
      );
    }
    return { prompt: r.prompt, completion: r.completion };
  });
}
