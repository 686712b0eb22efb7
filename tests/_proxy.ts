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
  | { kind: "throttle"; bytesPerSecond: number }
  /** Once `afterBytes` have gone through, forward `bytes` every `everyMs` each way: a server that trickles. */
  | { kind: "trickle"; afterBytes: number; bytes: number; everyMs: number };

/** A running proxy: where to connect, and how to change what it does. */
export interface FaultProxy extends AsyncDisposable {
  readonly port: number;
  /**
   * Apply `fault` to the next `connections` connections (all of them when omitted), then pass; a cut or stall counts
   * against `connections` only when it strikes (a connection that never carries `afterBytes` is spared).
   */
  setFault(fault: ProxyFault, connections?: number): void;
  /** Connections accepted so far, how many of them a fault was applied to, and the bytes relayed (both ways). */
  readonly stats: ProxyStats;
  /** Close every connection open now (a cut link); new ones are accepted under the fault set. */
  cutOpen(): void;
  /** Stop forwarding on every connection open now, keeping it open (a link that hangs); {@linkcode cutOpen} ends them. */
  stallOpen(): void;
}

/** What a proxy has done so far. */
export interface ProxyStats {
  accepted: number;
  faulted: number;
  bytes: number;
}

/** Start a proxy on 127.0.0.1 (a free port) in front of `target`. */
export function startProxy(target: { hostname: string; port: number }): FaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const relays = new Set<RelayState>();
  const stats: ProxyStats = { accepted: 0, faulted: 0, bytes: 0 };
  const control = { fault: { kind: "pass" } as ProxyFault, budget: Infinity };
  /** A cut or stall takes a connection from the budget when it strikes (one that never carries that much is spared). */
  const claim = (armed: ProxyFault) => {
    if (control.fault !== armed || control.budget <= 0) return false;
    control.budget--;
    stats.faulted++;
    return true;
  };
  const pumps: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      stats.accepted++;
      const fault = control.budget > 0 ? control.fault : { kind: "pass" } as const;
      if (fault.kind === "throttle" || fault.kind === "trickle") claim(fault);
      pumps.push(relay(client, target, fault, open, { stats, relays, claim: () => claim(fault) }));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats,
    cutOpen() {
      for (const conn of [...open]) {
        open.delete(conn);
        closeQuietly(conn);
      }
    },
    stallOpen() {
      for (const state of relays) state.stalled = true;
    },
    setFault(next, connections) {
      control.fault = next;
      control.budget = connections ?? Infinity;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.allSettled(pumps);
    },
  };
}

/** What a relay shares with the proxy: its counts, and the claim a cut or stall makes on the fault's budget. */
interface Shared {
  stats: ProxyStats;
  /** The relays carrying a connection now. */
  relays: Set<RelayState>;
  claim: () => boolean;
}

/** One relayed connection's progress under its fault. */
interface RelayState {
  bytes: number;
  stalled: boolean;
  passing: boolean;
  claimed: boolean;
  shared: Shared;
}

/** Carry one connection both ways under `fault`; the byte count is shared by both directions. */
async function relay(
  client: Deno.Conn,
  target: { hostname: string; port: number },
  fault: ProxyFault,
  open: Set<Deno.Conn>,
  shared: Shared,
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
  const state: RelayState = { bytes: 0, stalled: false, passing: false, claimed: false, shared };
  shared.relays.add(state);
  const done = () => {
    for (const conn of [client, server]) {
      open.delete(conn);
      closeQuietly(conn);
    }
  };
  await Promise.allSettled([pump(client, server, fault, state, done), pump(server, client, fault, state, done)]);
  shared.relays.delete(state);
  if (!state.stalled) done();
}

/** Copy `from` to `to` chunk by chunk, applying the fault; `done` closes both sides. */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  fault: ProxyFault,
  state: RelayState,
  done: () => void,
): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  for (;;) {
    const read = await from.read(buffer).catch(() => null);
    if (read === null || state.stalled) break;
    let chunk = buffer.subarray(0, read);
    const striking = (fault.kind === "cut" || fault.kind === "stall") && !state.passing;
    if (striking && !state.claimed && state.bytes + chunk.length >= fault.afterBytes) {
      state.claimed = state.shared.claim();
      state.passing = !state.claimed;
    }
    if (striking && !state.passing) chunk = chunk.subarray(0, Math.max(0, fault.afterBytes - state.bytes));
    const before = state.bytes;
    state.bytes += chunk.length;
    state.shared.stats.bytes += chunk.length;
    if (!await (fault.kind === "trickle" ? trickle(to, chunk, fault, before, state) : writeAll(to, chunk))) break;
    if (striking && !state.passing && state.bytes >= fault.afterBytes) {
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

/**
 * Write `chunk`, which comes `before` bytes into the connection: at once up to the fault's `afterBytes`, then `bytes`
 * every `everyMs` (until the relay is stalled).
 */
async function trickle(
  to: Deno.Conn,
  chunk: Uint8Array,
  fault: { afterBytes: number; bytes: number; everyMs: number },
  before: number,
  state: RelayState,
): Promise<boolean> {
  let at = Math.max(0, Math.min(chunk.length, fault.afterBytes - before));
  if (!await writeAll(to, chunk.subarray(0, at))) return false;
  while (at < chunk.length && !state.stalled) {
    await new Promise((resolve) => setTimeout(resolve, fault.everyMs));
    if (!await writeAll(to, chunk.subarray(at, at + fault.bytes))) return false;
    at += fault.bytes;
  }
  return true;
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
