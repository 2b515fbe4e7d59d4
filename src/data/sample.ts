/**
 * Seeded, order-independent selection of rows (the study's split sizes, `limit`).
 *
 * Procedure: every example gets the key SHA-256("merglot-sample-v1\n" + seed + "\n" + C), where C is the
 * example's content without its id as JSON with object keys sorted (so the key depends on what the row
 * says, not where it sits); the selection is the N examples with the smallest keys (byte-wise), ties
 * (identical rows) broken by source position, returned in key order. Same rows + seed → same selection,
 * whatever the file order or sharding; a larger N extends a smaller one (the first N of N' > N are the
 * same rows). Memory stays bounded by 2N examples while streaming.
 *
 * Examples cut from one source row (the sections of one esdurmus/wiki_lingua article) share a group:
 * their key is SHA-256 of "merglot-sample-v1\n" + seed + "\ngroup\n" + the source row as sorted JSON,
 * followed by "/" and the section's 6-digit position, so an article's sections sit together in key order
 * and carving (src/data/prepare.ts) can keep each article within one split.
 */
import { createHash } from "node:crypto";
import type { Example } from "./example.js";

/** JSON with object keys sorted at every level. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Which source row an example was cut from, when one row gives several examples. */
export interface ExampleGroup {
  /** Sorted JSON of the source row. */
  row: string;
  /** Position of the example among the row's examples. */
  member: number;
}

export function sampleKey(seed: number, ex: Example, group?: ExampleGroup): string {
  if (group) {
    const h = createHash("sha256").update(`merglot-sample-v1\n${seed}\ngroup\n${group.row}`).digest("hex");
    return `${h}/${String(group.member).padStart(6, "0")}`;
  }
  const { id: _id, ...content } = ex;
  void _id;
  return createHash("sha256").update(`merglot-sample-v1\n${seed}\n${stableStringify(content)}`).digest("hex");
}

interface Keyed {
  key: string;
  pos: number;
  ex: Example;
  group?: string;
}

const byKey = (a: Keyed, b: Keyed): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.pos - b.pos);

/** Streams examples in and keeps the `n` with the smallest keys. */
export class SeededSelection {
  private kept: Keyed[] = [];
  private pos = 0;
  constructor(
    private readonly n: number,
    private readonly seed: number,
  ) {}

  add(ex: Example, group?: ExampleGroup): void {
    const key = sampleKey(this.seed, ex, group);
    this.kept.push({ key, pos: this.pos++, ex, group: group ? key.slice(0, key.indexOf("/")) : undefined });
    if (this.kept.length >= 2 * this.n + 1024) this.trim();
  }

  private trim(): void {
    this.kept.sort(byKey);
    this.kept.length = Math.min(this.kept.length, this.n);
  }

  /** How many examples were offered. */
  get seen(): number {
    return this.pos;
  }

  /** The selection, in key order. */
  result(): Example[] {
    return this.entries().map((k) => k.ex);
  }

  /** The selection with each example's group (undefined for examples that are their own row). */
  entries(): { ex: Example; group?: string }[] {
    this.trim();
    return this.kept.map(({ ex, group }) => ({ ex, group }));
  }
}
