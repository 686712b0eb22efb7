/**
 * Where each part of a snapshot lands under `restore --to DIR` (and so in a drill's scratch copy): drawn in the README,
 * Restore. Two parts never share a path there, whatever the live store's file names.
 *
 * @module
 */
import { join } from "node:path";
import { CHROMA_FOLDER } from "../snapshot/layout.ts";

// the folders under DIR of the database and the registry when their names would collide
const DB_FOLDER = "database";
const REGISTRY_FOLDER = "registry";

/**
 * The database, registry and Chroma targets under `to`: `DIR/<db>`, `DIR/<registry>` and `DIR/chroma`, as always; or,
 * where two would share a name (the registry named as the database, its `-wal`, `-shm` or `-journal`, or `chroma`; a
 * database named `chroma`), `DIR/database/<db>` and `DIR/registry/<registry>`, so that neither is written over the
 * other. `registryName` is `null` when the snapshot holds no registry (nothing is written there).
 */
export function targetsUnder(
  to: string,
  dbName: string,
  registryName: string | null,
  fallbackRegistryName: string,
): { db: string; registry: string; chroma: string } {
  const taken = [dbName, `${dbName}-wal`, `${dbName}-shm`, `${dbName}-journal`, CHROMA_FOLDER];
  const collides = dbName === CHROMA_FOLDER || (registryName !== null && taken.includes(registryName));
  const registry = registryName ?? fallbackRegistryName;
  if (!collides) return { db: join(to, dbName), registry: join(to, registry), chroma: join(to, CHROMA_FOLDER) };
  return {
    db: join(to, DB_FOLDER, dbName),
    registry: join(to, REGISTRY_FOLDER, registry),
    chroma: join(to, CHROMA_FOLDER),
  };
}
