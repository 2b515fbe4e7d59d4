/**
 * Parquet through hyparquet, one row group at a time (memory bounded by the largest row group), with
 * hyparquet-compressors so that every codec the hub writes reads: snappy, gzip, zstd, brotli, lz4, lz4_raw.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { MerglotError } from "../../errors.js";
import type { SourceRow } from "./row.js";

/** int64 columns arrive as bigint: make them numbers where exact, recursively (lists, structs). */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

function corrupt(file: string, e: unknown): MerglotError {
  const msg = e instanceof Error ? e.message : String(e);
  return new MerglotError("data.parquet", `${file}: not a readable Parquet file (${msg.split("\n")[0]})`);
}

export async function* readParquet(file: string): AsyncGenerator<SourceRow> {
  let buffer, metadata: FileMetaData;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw corrupt(file, e);
  }
  let start = 0;
  for (const rg of metadata.row_groups) {
    const end = start + Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end, compressors });
    } catch (e) {
      throw corrupt(file, e);
    }
    for (let i = 0; i < rows.length; i++) {
      yield { row: plain(rows[i]) as Record<string, unknown>, file, where: `row ${start + i}` };
    }
    start = end;
  }
}
