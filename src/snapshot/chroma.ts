/**
 * The names inside a Chroma folder that this tool knows: Chroma's database and the hidden folders a restore
 * stages in, which are never Chroma's data.
 *
 * @module
 */
import { SIDECAR_SUFFIXES } from "../sqlite/file_format.ts";

/** The Chroma database file inside a Chroma folder. */
export const CHROMA_DB_FILE = "chroma.sqlite3";
/**
 * Name prefix of the hidden folder inside the Chroma folder where restore stages its
 * copy. One left by a killed restore is never Chroma's data: create leaves it out.
 */
export const CHROMA_STAGING_PREFIX = ".atocore-restore-";
/**
 * Name prefix of the hidden folder inside the Chroma folder where restore moves the
 * old entries aside during the swap. One left by a killed restore is never Chroma's
 * data either: create leaves it out, and the next restore removes it.
 */
export const CHROMA_OLD_PREFIX = ".atocore-old-";
/**
 * SQLite's own files beside Chroma's database, which create leaves out: the backup API already takes what they
 * hold into the copy of `chroma.sqlite3`. Any other name (an operator's `chroma.sqlite3-bak`) is Chroma's data.
 */
export const CHROMA_DB_SIDECARS: readonly string[] = SIDECAR_SUFFIXES.map((suffix) => `${CHROMA_DB_FILE}${suffix}`);
