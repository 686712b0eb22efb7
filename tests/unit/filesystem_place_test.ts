/**
 * Where a path lies in its filesystem, as the overlap checks compare paths reached through bind mounts: a path gone
 * since it was seen (a writer's `-journal`, deleted as it commits) has no place, and is no error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { filesystemPlace } from "../../src/sys/mounts.ts";
import { tempDir } from "../_helpers.ts";

Deno.test("filesystemPlace: a folder has one on its device; a path gone since it was seen has none, and throws nothing", () => {
  using dir = tempDir("atocore-place-");
  const place = filesystemPlace(dir.path);
  assert.ok(place !== null, "the mount table of this process cannot be read");
  assert.match(place.device, /^\d+:\d+$/);
  assert.ok(place.path.endsWith(dir.path.split("/").at(-1)!), place.path);
  const journal = join(dir.path, "atocore.db-journal");
  Deno.writeTextFileSync(journal, "");
  Deno.removeSync(journal);
  assert.equal(filesystemPlace(journal), null);
});
