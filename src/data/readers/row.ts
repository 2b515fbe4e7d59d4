/** One source row as read from a data file, with where it came from (for error messages and ids). */
export interface SourceRow {
  row: Record<string, unknown>;
  file: string;
  /** Human position for messages: "line 12" (text files) or "row 5" (Parquet, 0-based like the hub viewer). */
  where: string;
}

export type DataFormat = "jsonl" | "json" | "csv" | "tsv" | "parquet";

const EXT: [string, DataFormat][] = [
  [".jsonl", "jsonl"],
  [".ndjson", "jsonl"],
  [".json", "json"],
  [".csv", "csv"],
  [".tsv", "tsv"],
  [".parquet", "parquet"],
];

/** The data format a file name says, or undefined for files that are not data (README.md, .gitattributes…). */
export function formatOf(file: string): DataFormat | undefined {
  const lower = file.toLowerCase();
  return EXT.find(([ext]) => lower.endsWith(ext))?.[1];
}

export const DATA_EXTENSIONS = EXT.map(([e]) => e);
