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
 * Packs a fetch from a folder or S3 reads and opens at once by default: with 2 its one worker and the writing thread
 * wait on each other, and S3 waits on each request. Over SFTP a fetch keeps {@linkcode DEFAULT_TRANSFERS}: its client
 * decrypts on the main thread and holds its own buffers, and 3 came too near the memory bound (README, Performance).
 */
export const FETCH_TRANSFERS = 3;
/** The most transfers a command accepts. */
export const MAX_TRANSFERS = 32;

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
