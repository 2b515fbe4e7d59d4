/**
 * A real HTTP server on 127.0.0.1 (port 0) for the server runner's tests: it answers requests from recorded
 * exchanges (method, path and JSON body equal to a recorded request → the recorded status and answer; anything
 * else → 404 with the unmatched request, so that a request the runner sends differently from the recording
 * fails the test), and lets a test replace the answer of any request to inject faults (a 500, malformed JSON,
 * a stall, a dropped connection). It counts the requests per path.
 */
import { isDeepStrictEqual } from "node:util";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";

export interface Exchange {
  method: string;
  path: string;
  request: unknown;
  status: number;
  response: unknown;
}

export interface Incoming {
  method: string;
  path: string;
  body: unknown;
  /** How many requests this path has had before this one. */
  seen: number;
}

/** A fault or a custom answer: return it to replace the recorded one, or undefined to replay. */
export type Override = (req: Incoming, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface ReplayServer {
  url: string;
  hits: Map<string, number>;
  override: Override | null;
  close(): Promise<void>;
}

export function readExchanges(path: string): Exchange[] {
  return (JSON.parse(readFileSync(path, "utf8")) as { exchanges: Exchange[] }).exchanges;
}

export async function replayServer(exchanges: readonly Exchange[]): Promise<ReplayServer> {
  const state: ReplayServer = {
    url: "",
    hits: new Map(),
    override: null,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const path = req.url ?? "/";
        const seen = state.hits.get(path) ?? 0;
        state.hits.set(path, seen + 1);
        const body = text ? (JSON.parse(text) as unknown) : null;
        if (state.override && (await state.override({ method: req.method ?? "GET", path, body, seen }, res)))
          return;
        const hit = exchanges.find(
          (e) => e.method === req.method && e.path === path && isDeepStrictEqual(e.request, body),
        );
        if (!hit) {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(
            JSON.stringify({ error: { message: `no recorded exchange for ${req.method} ${path} ${text}` } }),
          );
          return;
        }
        res.writeHead(hit.status, { "content-type": "application/json" });
        res.end(JSON.stringify(hit.response));
      })();
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return state;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}
