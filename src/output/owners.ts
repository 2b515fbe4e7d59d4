/**
 * How each command recognises an existing output it wrote (so `--force` may replace it). A new command that
 * writes adds its entry here and in the README's "Outputs and safety" table.
 */
import { fileWithMagic, folderWithMarker, type Ownership } from "./guard.js";

export const OWNERS = {
  /** merge, PEFT folder: the manifest every merge writes. */
  merge: folderWithMarker("merge", "merge_manifest.json"),
  /** merge with output.format gguf, and convert: a GGUF file. */
  mergeGguf: fileWithMagic("merge", "GGUF"),
  /** merge with output.format gguf: the manifest written beside the file (it starts like this). */
  mergeManifestFile: fileWithMagic("merge", '{\n  "tool": "merglot"'),
  convert: fileWithMagic("convert", "GGUF"),
  /** train and pretrain: the training log both write. */
  train: folderWithMarker("train", "training_log.json"),
  pretrain: folderWithMarker("pretrain", "training_log.json"),
  /** data: the manifest `merglot data` writes with the splits. */
  data: folderWithMarker("data", "data_manifest.json"),
  /** eval: the metrics every evaluation writes. */
  eval: folderWithMarker("eval", "metrics.json"),
  /** search: its record of every candidate. */
  search: folderWithMarker("search", "search.json"),
  /** Library writers called with a plain path (tests, scripts): any existing path counts, as `force` says. */
  unchecked: { command: "library", missing: "not checked", owns: () => true } as Ownership,
};
