/**
 * A TCP proxy of the tests' own between the tool and a real server, to cut, stall or slow the network in the middle
 * of a transfer: the faults a WAN does, on loopback, seeded and bounded.
 *
 * @module
 */

/** What the proxy does to the next connections. */
export type ProxyFault =
  | { kind: "pass" }
  /** Close both sides once `afterBytes` have gone through a connection (either way): a cut link or a reset. */
  | { kind: "cut"; afterBytes: number }
  /** Stop forwarding once `afterBytes` have gone through, keeping both sides open: a stalled link. */
  | { kind: "stall"; afterBytes: number }
  /** Forward at most `bytesPerSecond` each way: a slow link. */
  | { kind: "throttle"; bytesPerSecond: number };

/** A running proxy: where to connect, and how to change what it does. */
export interface FaultProxy extends AsyncDisposable {
  readonly port: number;
  /** Apply `fault` to the next `connections` connections (all of them when omitted), then pass. */
  setFault(fault: ProxyFault, connections?: number): void;
  /** Connections accepted so far, and how many of them a fault was applied to. */
  readonly stats: { accepted: number; faulted: number };
}

/** Start a proxy on 127.0.0.1 (a free port) in front of `target`. */
export function startProxy(target: { hostname: string; port: number }): FaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const stats = { accepted: 0, faulted: 0 };
  let fault: ProxyFault = { kind: "pass" };
  let budget = Infinity;
  const pumps: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      stats.accepted++;
      const applied = budget > 0 ? fault : { kind: "pass" } as const;
      if (applied.kind !== "pass" && budget > 0) {
        budget--;
        stats.faulted++;
      }
      pumps.push(relay(client, target, applied, open));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats,
    setFault(next, connections) {
      fault = next;
      budget = connections ?? Infinity;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.allSettled(pumps);
    },
  };
}

/** Carry one connection both ways under `fault`; the byte count is shared by both directions. */
async function relay(
  client: Deno.Conn,
  target: { hostname: string; port: number },
  fault: ProxyFault,
  open: Set<Deno.Conn>,
): Promise<void> {
  open.add(client);
  let server: Deno.Conn;
  try {
    server = await Deno.connect(target);
  } catch {
    open.delete(client);
    closeQuietly(client);
    return;
  }
  open.add(server);
  const state = { bytes: 0, stalled: false };
  const done = () => {
    for (const conn of [client, server]) {
      open.delete(conn);
      closeQuietly(conn);
    }
  };
  await Promise.allSettled([pump(client, server, fault, state, done), pump(server, client, fault, state, done)]);
  if (!state.stalled) done();
}

/** Copy `from` to `to` chunk by chunk, applying the fault; `done` closes both sides. */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  fault: ProxyFault,
  state: { bytes: number; stalled: boolean },
  done: () => void,
): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  for (;;) {
    const read = await from.read(buffer).catch(() => null);
    if (read === null || state.stalled) break;
    let chunk = buffer.subarray(0, read);
    if (fault.kind === "cut" || fault.kind === "stall") {
      const room = fault.afterBytes - state.bytes;
      if (room <= 0 || chunk.length > room) chunk = chunk.subarray(0, Math.max(0, room));
    }
    state.bytes += chunk.length;
    if (!await writeAll(to, chunk)) break;
    if ((fault.kind === "cut" || fault.kind === "stall") && state.bytes >= fault.afterBytes) {
      if (fault.kind === "cut") done();
      else state.stalled = true;
      break;
    }
    if (fault.kind === "throttle") {
      await new Promise((resolve) => setTimeout(resolve, 1000 * read / fault.bytesPerSecond));
    }
  }
  if (!state.stalled) done();
}

async function writeAll(to: Deno.Conn, chunk: Uint8Array): Promise<boolean> {
  try {
    for (let written = 0; written < chunk.length;) written += await to.write(chunk.subarray(written));
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
