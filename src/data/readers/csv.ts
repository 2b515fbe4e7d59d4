/** CSV and TSV with a header line (csv-parse: RFC 4180 quoting, embedded newlines, BOM). */
import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { MerglotError } from "../../errors.js";
import { utf8Chunks } from "../text.js";
import type { SourceRow } from "./row.js";

export async function* readCsv(file: string, delimiter: "," | "\t"): AsyncGenerator<SourceRow> {
  const source = Readable.from(utf8Chunks(file), { objectMode: false });
  const parser = parse({ columns: true, delimiter, bom: true, info: true, skip_empty_lines: true });
  source.on("error", (e) => parser.destroy(e));
  source.pipe(parser);
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, unknown>; info: { lines: number } }>) {
      yield { row: rec.record, file, where: `line ${rec.info.lines}` };
    }
  } catch (e) {
    if (e instanceof MerglotError) throw e;
    const err = e as { message: string; lines?: number };
    const at = err.lines !== undefined ? ` line ${err.lines}` : "";
    throw new MerglotError("data.csv", `${file}${at}: not valid ${delimiter === "," ? "CSV" : "TSV"} (${err.message})`);
  } finally {
    source.destroy();
  }
}
