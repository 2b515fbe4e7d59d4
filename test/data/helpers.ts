/** Shared pieces of the dataset tests. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { MerglotError } from "../../src/errors.js";

/** test/fixtures/datasets/<name> in the source tree (tests run from dist/test/data). */
export function datasetFixture(name: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/datasets/${name}`, import.meta.url));
}

/** `p` rejects with a MerglotError of this code whose message matches `pattern`. */
export async function rejectsMerglot(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MerglotError, `expected a MerglotError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}
