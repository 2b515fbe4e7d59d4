/** The canonical JSONL bytes of examples: what `merglot data` writes and what the content hash covers. */
import { createHash } from "node:crypto";
import type { Example } from "./example.js";

export function exampleLine(ex: Example): string {
  return JSON.stringify(ex) + "\n";
}

export function examplesSha256(examples: readonly Example[]): string {
  const h = createHash("sha256");
  for (const ex of examples) h.update(exampleLine(ex));
  return h.digest("hex");
}
