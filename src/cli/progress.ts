import cliProgress from "cli-progress";
import { escapeControl } from "./terminal.js";

/** A progress bar on a TTY, nothing otherwise (logs and CI stay clean). */
export function progressBar(label: string): {
  update(done: number, total: number, what: string): void;
  stop(): void;
} {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${escapeControl(label)} [{bar}] {value}/{total} {what} | {duration_formatted} elapsed, eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, what) {
      if (!started) {
        bar.start(total, 0, { what: "" });
        started = true;
      }
      bar.update(done, { what: escapeControl(what) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
