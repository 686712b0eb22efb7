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
 * waited on each other; from a folder 3 restored the small-row store about 1 s sooner (of 6.5) for about 5 MiB more, 4
 * no sooner and 15 MiB; from loopback S3 the sample store in 5.7 s instead of 6.4. Over SFTP the default stays
 * {@linkcode DEFAULT_TRANSFERS}: its client decrypts on the main thread and holds its own buffers, and 3 restored the
 * sample store 1.2 s sooner (of 10.3) but peaked at 247 MiB, too near the 256 MiB bound.
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
