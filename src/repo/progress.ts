/**
 * The least a network backend's download must bring in one stall timeout to count as moving, shared by SFTP and S3.
 *
 * @module
 */

/**
 * Bytes that must come within one stall timeout (unless a whole answer came) for a read to count as moving: a server
 * that trickles a byte now and then, never silent for the whole timeout, would otherwise hold a read for ever.
 */
export const PROGRESS_BYTES = 64 * 1024;
