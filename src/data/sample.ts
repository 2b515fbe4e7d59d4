/**
 * Seeded, order-independent selection of rows (the study's split sizes, `limit`).
 *
 * Procedure: every example gets the key SHA-256("merglot-sample-v1\n" + seed + "\n" + C), where C is the
 * example's content without its id as JSON with object keys sorted (so the key depends on what the row
 * says, not where it sits); the selection is the N examples with the smallest keys (byte-wise), ties
 * (identical rows) broken by source position, returned in key order. Same rows + seed → same selection,
 * whatever the file order or sharding; a larger N extends a smaller one (the first N of N' > N are the
 * same rows). Memory stays bounded by 2N examples while streaming.
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

export function sampleKey(seed: number, ex: Example): string {
  const { id: _id, ...content } = ex;
  void _id;
  return createHash("sha256").update(`merglot-sample-v1\n${seed}\n${stableStringify(content)}`).digest("hex");
}

interface Keyed {
  key: string;
  pos: number;
  ex: Example;
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

  add(ex: Example): void {
    this.kept.push({ key: sampleKey(this.seed, ex), pos: this.pos++, ex });
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
    this.trim();
    return this.kept.map((k) => k.ex);
  }
}
