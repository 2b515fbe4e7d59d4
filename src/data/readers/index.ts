/** Reads the rows of one data file, whatever its format. */
import { MerglotError } from "../../errors.js";
import { readCsv } from "./csv.js";
import { readJson, readJsonl } from "./jsonl.js";
import { readParquet } from "./parquet.js";
import { formatOf, type SourceRow } from "./row.js";

export { formatOf, DATA_EXTENSIONS, type SourceRow, type DataFormat } from "./row.js";

export async function* readRows(file: string): AsyncGenerator<SourceRow> {
  const format = formatOf(file);
  switch (format) {
    case "jsonl":
      yield* readJsonl(file);
      return;
    case "json":
      yield* readJson(file);
      return;
    case "csv":
      yield* readCsv(file, ",");
      return;
    case "tsv":
      yield* readCsv(file, "\t");
      return;
    case "parquet":
      yield* readParquet(file);
      return;
    default:
      throw new MerglotError(
        "data.format",
        `${file}: unknown data file type (expected .jsonl, .ndjson, .json, .csv, .tsv or .parquet)`,
      );
  }
}
