import assert from "node:assert/strict";
import { BufferPool } from "../../src/repo/buffer_pool.ts";

Deno.test("buffer pool: at most its count out at once; a taker waits for one given back, in order", async () => {
  const pool = new BufferPool(2, 16);
  const [a, b] = [await pool.take(), await pool.take()];
  assert.notEqual(a, b);
  const order: string[] = [];
  const third = pool.take().then((buffer) => (order.push("third"), buffer));
  const fourth = pool.take().then((buffer) => (order.push("fourth"), buffer));
  await Promise.resolve();
  assert.deepEqual(order, [], "no buffer while both are out");
  pool.give(b);
  assert.equal(await third, b, "the longest waiting taker gets the buffer given back");
  pool.give(a);
  assert.equal(await fourth, a);
  assert.deepEqual(order, ["third", "fourth"]);
});

Deno.test("buffer pool: a buffer given back detached (moved to a worker that failed) is replaced by a new one", async () => {
  const pool = new BufferPool(1, 16);
  const taken = await pool.take();
  (taken.buffer as ArrayBuffer).transfer(); // detaches it, as a transfer to a worker does
  assert.equal(taken.byteLength, 0);
  pool.give(taken);
  const next = await pool.take();
  assert.equal(next.byteLength, 16);
  assert.notEqual(next, taken);
});
