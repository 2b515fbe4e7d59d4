/**
 * Writing outputs safely — the one module every command that writes goes through (merge, convert, train,
 * pretrain, demo, and eval / study):
 *
 * - `openOutput(spec)` → `OutputSlot`: refuses protected paths (an input, a folder holding an input, the
 *   root, the current folder or one above it) and existing outputs the policy does not allow replacing
 *   (`--force` replaces only what the same command wrote, recognised by its `Ownership`;
 *   `--force-replace-foreign` replaces anything else), checks the parent folder can be written, sweeps stale
 *   debris of dead runs next to the output, and reserves a registered temp path.
 * - `slot.commit()` replaces atomically by rename; `throw slot.fail(e)` cleans up and names the user's path.
 * - `checkOutput(spec)` runs the same checks without reserving anything (call it before expensive work).
 * - `enableSignalCleanup()` (the CLI calls it): SIGINT / SIGTERM / SIGHUP remove live temps, exit 128 + n.
 */
export {
  checkOutput,
  onOutputWarning,
  openOutput,
  OutputSlot,
  writeOutputFile,
  type OutputSpec,
} from "./slot.js";
export { OWNERS } from "./owners.js";
export {
  checkFreeSpace,
  checkNotProtected,
  checkParentWritable,
  checkReplaceable,
  fileWithMagic,
  folderWithMarker,
  type Ownership,
  type ReplacePolicy,
} from "./guard.js";
export {
  cleanupLiveDebris,
  debrisPathFor,
  enableSignalCleanup,
  liveDebris,
  parseDebrisName,
  registerDebris,
  removeTree,
  sweepDebris,
  unregisterDebris,
} from "./debris.js";
export { describeFsError, fsErrorIn, isFsError, outputWriteError } from "./fs-errors.js";
