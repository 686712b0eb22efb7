/**
 * Running per-pack work a few at a time (`--transfers`): enough to keep a network link or the cores busy, few enough
 * that memory stays a fixed number of pack buffers per lane.
 *
 * @module
 */

/**
 * Transfers in flight by default (push uploads, fetch and verify reads): 2, as 4 were no faster on loopback SFTP and
 * S3 and an S3 upload in flight holds about 40 MiB (see the README's Performance section).
 */
export const DEFAULT_TRANSFERS = 2;
/**
 * Packs a fetch from a folder reads and opens at once by default: with fewer its one worker and the writing thread wait
 * on each other. Restoring the small-row store's snapshot (5 alternating runs), 4 took 1.80 to 2.22 s (median 1.88)
 * against 2.03 to 2.31 s (2.24) with 3, for about 12 MiB more (peaks 200 against 189 MiB); restic took 1.76 to 1.91 s.
 */
export const FOLDER_FETCH_TRANSFERS = 4;
/**
 * The same from S3, where a fetch waits on the server's answers: more at once kept radosgw busier (README,
 * Performance).
 */
export const S3_FETCH_TRANSFERS = 4;

/**
 * Run `work(index, lane)` for every index below `count`, at most `lanes` at once (`lane` numbers the runner, so each
 * keeps its own buffers). After a failure no new index starts; every started one ends before the first failure is
 * rethrown (so nothing keeps writing after the caller cleaned up).
 */
export async function inLanes(
  count: number,
  lanes: number,
  work: (index: number, lane: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const runner = async (lane: number) => {
    while (next < count && !failure) {
      const index = next++;
      try {
        await work(index, lane);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, count)) }, (_, lane) => runner(lane)));
  if (failure) throw (failure as { error: unknown }).error;
}
