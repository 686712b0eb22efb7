/**
 * `validate` end to end through the CLI: good snapshots, --quick, --all, every kind
 * of damage named, refused stamps, and snapshots found somewhere else than where
 * they were made (a copied folder, a read-only mount).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cliCommand,
  cliEnv,
  type CliRun,
  cliRunOf,
  createdStamp,
  moduleSnapshot,
  relocateSnapshot,
  ROOT,
  runCli,
  runCliOnTerminal,
  skipBecause,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames } from "../_faults.ts";
import { bindReadOnly, mountTmpfs, readOnlyBindMount } from "../_mount.ts";

const SEGMENT = "00000000-5e9a-4c1d-8f00-000000000000";
const SMALL = { dbMiB: 0.5, chromaMiB: 0.2, segments: 1 };

interface Validation {
  stamp: string;
  path: string;
  exists: boolean;
  db_ok: boolean;
  registry_ok: boolean | null;
  chroma_ok: boolean | null;
  errors: string[];
  valid: boolean;
  manifest_ok: boolean | null;
  metadata_bound: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
  metadata?: { manifest: { path: string; size?: number }[] };
}

/** A sample store with one snapshot (with Chroma) made by the CLI. */
async function storeWithSnapshot() {
  const store = tempStore(SMALL);
  const stamp = await createdStamp(storeEnv(store));
  return Object.assign(store, { stamp, root: join(store.backupDir, "snapshots", stamp) });
}

async function validate(backupDir: string, ...args: string[]) {
  const run = await runCli(["validate", "--json", "--backup-dir", backupDir, ...args]);
  return { ...run, result: run.json as Validation };
}

/** Flip one byte in the middle of a file (its size stays the same). */
function flipByte(path: string): void {
  const bytes = Deno.readFileSync(path);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  Deno.writeFileSync(path, bytes);
}

/** Copy a folder with `cp -a` (links, modes and times kept), as an operator or CI would. */
function copyTree(from: string, to: string): void {
  assert.ok(new Deno.Command("cp", { args: ["-a", from, to] }).outputSync().success);
}

/** Every `-wal`, `-shm` and `-journal` file below `root`. */
function sidecars(root: string): string[] {
  const output = new Deno.Command("find", {
    args: [root, "(", "-name", "*-wal", "-o", "-name", "*-shm", "-o", "-name", "*-journal", ")"],
  }).outputSync();
  return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean);
}

Deno.test("a good snapshot validates: the module's keys, every manifest file hashed", async () => {
  using store = await storeWithSnapshot();
  const { code, result } = await validate(store.backupDir, store.stamp);
  assert.equal(code, 0);
  const { metadata, ...checks } = result;
  const manifest = metadata!.manifest;
  assert.deepEqual(checks, {
    stamp: store.stamp,
    path: store.root,
    exists: true,
    db_ok: true,
    registry_ok: true,
    chroma_ok: true,
    errors: [],
    valid: true,
    manifest_ok: true,
    metadata_bound: true,
    files_checked: manifest.length,
    bytes_hashed: manifest.reduce((sum, entry) => sum + (entry.size ?? 0), 0),
    quick: false,
    stamp_in_future: false,
  });
  assert.deepEqual(sidecars(store.backupDir), [], "validation leaves no sidecar");
});

Deno.test("a snapshot folder renamed by hand does not validate: its metadata names another stamp", async () => {
  using store = await storeWithSnapshot();
  const renamed = "20010101T000000Z";
  Deno.renameSync(store.root, join(store.backupDir, "snapshots", renamed));
  const { code, result } = await validate(store.backupDir, renamed);
  assert.equal(code, 1);
  assert.deepEqual(result.errors, [`backup_root_names_another_stamp: ${store.stamp}; the folder is ${renamed}`]);
});

Deno.test("--quick checks sizes and integrity but hashes nothing", async () => {
  using store = await storeWithSnapshot();
  const quick = await validate(store.backupDir, store.stamp, "--quick");
  assert.equal(quick.code, 0);
  assert.equal(quick.result.quick, true);
  assert.equal(quick.result.bytes_hashed, 0);
  flipByte(join(store.root, "chroma", SEGMENT, "data_level0.bin"));
  assert.equal((await validate(store.backupDir, store.stamp, "--quick")).code, 0, "same size: --quick cannot see it");
  assert.equal((await validate(store.backupDir, store.stamp)).code, 1, "the full check sees it");
  Deno.writeTextFileSync(join(store.root, "chroma", SEGMENT, "header.bin"), "shorter");
  const sized = await validate(store.backupDir, store.stamp, "--quick");
  assert.equal(sized.code, 1);
  assert.match(sized.result.errors.join("\n"), new RegExp(`manifest_size_mismatch .*: chroma/${SEGMENT}/header.bin`));
});

Deno.test("--all checks every snapshot and fails when one is bad", async () => {
  using store = await storeWithSnapshot();
  const second = await runCli(["create"], { env: storeEnv(store) });
  assert.equal(second.code, 0, second.stderr);
  const all = await runCli(["validate", "--all", "--json", "--backup-dir", store.backupDir]);
  assert.equal(all.code, 0);
  const report = all.json as { valid: boolean; results: Validation[] };
  assert.equal(report.valid, true);
  assert.deepEqual(report.results.map((result) => result.stamp), [store.stamp, (second.json as Validation).stamp]);
  flipByte(join(store.root, "config", "project-registry.json"));
  const bad = await runCli(["validate", "--all", "--json", "--backup-dir", store.backupDir]);
  assert.equal(bad.code, 1);
  const after = bad.json as { valid: boolean; results: Validation[] };
  assert.equal(after.valid, false);
  assert.deepEqual(after.results.map((result) => result.valid), [false, true]);
});

Deno.test("--all skips, and names, a folder under snapshots/ that is not a stamp", async () => {
  using store = await storeWithSnapshot();
  Deno.mkdirSync(join(store.backupDir, "snapshots", "lost+found"));
  const all = await runCli(["validate", "--all", "--json", "--backup-dir", store.backupDir]);
  assert.equal(all.code, 0, all.stderr);
  const report = all.json as { valid: boolean; results: Validation[]; skipped: string[] };
  assert.deepEqual(report.results.map((result) => result.stamp), [store.stamp]);
  assert.deepEqual(report.skipped, ["lost+found"]);
});

Deno.test("list notes a folder whose name is not a calendar-valid stamp as it notes any other name, the rule validate goes by", async () => {
  using store = await storeWithSnapshot();
  const names = ["20260230T000000Z", "20261231T235960Z", "notes"];
  for (const name of names) Deno.mkdirSync(join(store.backupDir, "snapshots", name));
  const { code, text } = await runCliOnTerminal(["list"], storeEnv(store));
  assert.equal(code, 0, text);
  for (const name of names) {
    assert.match(text, new RegExp(`^${name} .* not a stamp: no command takes it, cleanup leaves it\\r?$`, "m"));
    assert.equal((await validate(store.backupDir, name)).code, 2, `validate ${name}`);
  }
  assert.doesNotMatch(text, new RegExp(`^${store.stamp} .*not a stamp`, "m"));
});

Deno.test("list on a backup folder that is not there is a usage error naming it; a folder without snapshots/ is empty", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(join(dir.path, "a-file"), "not a folder");
  for (
    const [backupDir, there] of [[join(dir.path, "backupz"), ""], [join(dir.path, "a-file"), " (a file is there)"]]
  ) {
    const run = await runCli(["list", "--backup-dir", backupDir]);
    assert.equal(run.code, 2, `${backupDir}: ${run.stdout} ${run.stderr}`);
    assert.equal(run.stdout, "");
    assert.equal(
      run.stderr.trim(),
      `atocore-backup: error: no backup folder at ${backupDir}${there}; check --backup-dir or ATOCORE_BACKUP_DIR ` +
        `(see 'config'), or make one first with: atocore-backup create --backup-dir ${backupDir}`,
    );
  }
  const fresh = join(dir.path, "fresh");
  Deno.mkdirSync(fresh);
  const empty = await runCli(["list", "--json", "--backup-dir", fresh]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.deepEqual(empty.json, { backups: [], failed: [], warnings: [] });
});

Deno.test("--all on a backup folder without snapshots/, or with a file there, is a usage error naming it; an empty snapshots/ is valid", async () => {
  using dir = tempDir();
  const missing = join(dir.path, "backupz");
  for (const backupDir of [missing, join(dir.path, "a-file", "backups")]) {
    Deno.writeTextFileSync(join(dir.path, "a-file"), "not a folder");
    const run = await runCli(["validate", "--all", "--backup-dir", backupDir]);
    assert.equal(run.code, 2, `${backupDir}: ${run.stdout} ${run.stderr}`);
    assert.equal(run.stdout, "");
    assert.equal(
      run.stderr.trim(),
      `atocore-backup: error: no snapshots folder at ${
        join(backupDir, "snapshots")
      }; check --backup-dir or ATOCORE_BACKUP_DIR (see 'config')`,
    );
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((entry) => entry.name), ["a-file"], "validate made a folder");
  // snapshots/ a file: said so by validate --all and drill --latest, not taken for no snapshots folder or none to drill
  Deno.mkdirSync(missing);
  Deno.writeTextFileSync(join(missing, "snapshots"), "");
  for (const args of [["validate", "--all"], ["drill", "--latest"]]) {
    const run = await runCli([...args, "--backup-dir", missing]);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`error: ${join(missing, "snapshots")} is a file, not a folder: `), run.stderr);
  }
  Deno.removeSync(join(missing, "snapshots"));
  Deno.mkdirSync(join(missing, "snapshots"), { recursive: true });
  const empty = await runCli(["validate", "--all", "--json", "--backup-dir", missing]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.deepEqual(empty.json, { valid: true, results: [], skipped: [], removed_during_validation: [] });
});

Deno.test("a flipped byte in each kind of file is named, with exit 1", async () => {
  using store = await storeWithSnapshot();
  using copies = tempDir();
  const files = [
    "db/atocore.db",
    "config/project-registry.json",
    "chroma/chroma.sqlite3",
    `chroma/${SEGMENT}/data_level0.bin`,
    `chroma/${SEGMENT}/index_metadata.pickle`,
  ];
  for (const [index, file] of files.entries()) {
    const backup = join(copies.path, String(index));
    copyTree(store.backupDir, backup);
    flipByte(join(backup, "snapshots", store.stamp, file));
    const { code, result } = await validate(backup, store.stamp);
    assert.equal(code, 1, file);
    assert.equal(result.valid, false);
    assert.ok(result.errors.includes(`manifest_sha256_mismatch: ${file}`), `${file}: ${result.errors}`);
  }
});

Deno.test("metadata that is missing or not JSON is reported, with exit 1", async () => {
  using store = await storeWithSnapshot();
  const metadata = join(store.root, "backup-metadata.json");
  Deno.writeTextFileSync(metadata, "{ truncated");
  const broken = await validate(store.backupDir, store.stamp);
  assert.equal(broken.code, 1);
  assert.match(broken.result.errors[0], /^metadata_invalid_json: /);
  Deno.writeTextFileSync(metadata, "[1, 2]");
  assert.match((await validate(store.backupDir, store.stamp)).result.errors[0], /^metadata_invalid_json: /);
  Deno.removeSync(metadata);
  const missing = await validate(store.backupDir, store.stamp);
  assert.equal(missing.code, 1);
  assert.deepEqual(missing.result.errors, ["metadata_missing"]);
});

Deno.test("missing, extra and absent files are reported by name, with exit 1", async () => {
  using store = await storeWithSnapshot();
  Deno.removeSync(join(store.root, "chroma", SEGMENT, "header.bin"));
  Deno.writeTextFileSync(join(store.root, "chroma", "stray.txt"), "not from the copy");
  const damaged = await validate(store.backupDir, store.stamp);
  assert.equal(damaged.code, 1);
  assert.ok(damaged.result.errors.includes(`manifest_file_missing: chroma/${SEGMENT}/header.bin`));
  assert.ok(damaged.result.errors.includes("manifest_unexpected_file: chroma/stray.txt"));
  Deno.removeSync(join(store.root, "db", "atocore.db"));
  const noDb = await validate(store.backupDir, store.stamp);
  assert.equal(noDb.result.db_ok, false);
  assert.ok(noDb.result.errors.includes("db_snapshot_missing"));
  assert.ok(noDb.result.errors.includes("manifest_file_missing: db/atocore.db"));
  const absent = await validate(store.backupDir, "20200101T000000Z");
  assert.equal(absent.code, 2, "a stamp with no snapshot is a usage error (see bad_input_test.ts)");
});

Deno.test("a stamp that is not plain is refused with exit 2 before any file is touched", async () => {
  using store = await storeWithSnapshot();
  using dir = tempDir();
  const nowhere = join(dir.path, "no-backups");
  for (const stamp of ["../x", "/etc", "", "2".repeat(300), `../snapshots/${store.stamp}`, `${store.stamp}/..`]) {
    for (const backupDir of [store.backupDir, nowhere]) {
      const run = await runCli(["validate", stamp, "--backup-dir", backupDir]);
      assert.equal(run.code, 2, JSON.stringify(stamp));
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /not a snapshot stamp/);
    }
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "nothing was created");
});

Deno.test("a backup folder copied elsewhere validates there, against the files found there", async () => {
  using store = await storeWithSnapshot();
  using elsewhere = tempDir();
  const copy = join(elsewhere.path, "mounted", "backups");
  Deno.mkdirSync(join(copy, ".."));
  copyTree(store.backupDir, copy);
  Deno.removeSync(store.backupDir, { recursive: true });
  const { code, result } = await validate(copy, store.stamp);
  assert.equal(code, 0, JSON.stringify(result.errors));
  assert.equal(result.path, join(copy, "snapshots", store.stamp));
  flipByte(join(copy, "snapshots", store.stamp, "db", "atocore.db"));
  assert.equal((await validate(copy, store.stamp)).code, 1, "the copy's own files are the ones checked");
});

Deno.test("a read-only view of the backup folder validates with either driver and grows no sidecars", async (t) => {
  using store = await storeWithSnapshot();
  const mount = readOnlyBindMount(store.backupDir);
  if (typeof mount === "string") {
    console.log(`skipped: ${mount}`);
    await t.step({ name: "read-only mount", ignore: true, fn: () => {} });
    return;
  }
  using _mount = mount;
  for (const driver of ["ffi", "builtin"]) {
    const { code, result } = await validate(mount.path, store.stamp, "--sqlite-driver", driver);
    assert.equal(code, 0, `${driver}: ${JSON.stringify(result.errors)}`);
    assert.equal(result.db_ok && result.chroma_ok && result.manifest_ok, true);
    const all = await runCli(["validate", "--all", "--quick", "--backup-dir", mount.path, "--sqlite-driver", driver]);
    assert.equal(all.code, 0, all.stdout);
  }
  assert.deepEqual(sidecars(store.backupDir), []);
});

/** The three broken temporary folders of issue 10 (point 20), each made for the test: missing, read-only, too small. */
function brokenTemporaryFolders(base: string): { name: string; path: string; mount?: Disposable }[] | string {
  const readOnly = join(base, "read-only");
  const tiny = join(base, "tiny");
  Deno.mkdirSync(readOnly);
  Deno.mkdirSync(tiny);
  const roMount = bindReadOnly(readOnly);
  if (typeof roMount === "string") return roMount;
  const tinyMount = mountTmpfs(tiny, "16k");
  if (typeof tinyMount === "string") {
    roMount[Symbol.dispose]();
    return tinyMount;
  }
  return [
    { name: "missing", path: join(base, "missing") },
    { name: "read-only", path: readOnly, mount: roMount },
    { name: "too small", path: tiny, mount: tinyMount },
  ];
}

Deno.test("built-in driver, TMPDIR missing, read-only or too small: its snapshots and the module's validate", async (t) => {
  using store = tempStore(SMALL);
  const env = storeEnv(store);
  const moduleStamp = await moduleSnapshot(store, "TMPDIR broken"); // first: the module reuses a stamp taken this second
  const ownStamp = await createdStamp(env);
  using base = tempDir();
  const folders = brokenTemporaryFolders(base.path);
  if (typeof folders === "string") {
    skipBecause(folders);
    await t.step({ name: "broken temporary folders", ignore: true, fn: () => {} });
    return;
  }
  try {
    for (const folder of folders) {
      const tmpEnv = { ...env, TMPDIR: folder.path };
      for (const stamp of [ownStamp, moduleStamp]) {
        const run = await runCli(["validate", stamp, "--json", "--sqlite-driver", "builtin"], { env: tmpEnv });
        assert.equal(run.code, 0, `TMPDIR ${folder.name}, ${stamp}: ${run.stdout} ${run.stderr}`);
      }
      const created = await runCli(["create", "--chroma", "--sqlite-driver", "builtin"], { env: tmpEnv });
      assert.equal(created.code, 0, `TMPDIR ${folder.name}: create: ${created.stderr}`);
      const drill = await runCli(["drill", ownStamp, "--sqlite-driver", "builtin", "--scratch-dir", base.path], {
        env: tmpEnv,
      });
      assert.equal(drill.code, 0, `TMPDIR ${folder.name}: drill with --scratch-dir: ${drill.stdout}`);
    }
    const noScratch = await runCli(["drill", ownStamp, "--json"], { env: { ...env, TMPDIR: folders[0].path } });
    assert.equal(noScratch.code, 1);
    const restoreCheck = (noScratch.json as { checks: { name: string; detail: string }[] }).checks[1];
    assert.equal(
      restoreCheck.detail,
      `cannot make a scratch folder in the temporary folder ${folders[0].path} (not found); ` +
        "set TMPDIR to a folder with room for the store, or give --scratch-dir DIR",
    );
    assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], "nothing was set aside as invalid");
  } finally {
    for (const folder of folders) folder.mount?.[Symbol.dispose]();
  }
});

/**
 * Run the CLI in a mount namespace of its own where the store is at /media, the project at /mnt (a checkout under /tmp
 * would be hidden), and no temporary folder has room: /tmp and /var/tmp are 16 KiB tmpfs, and TMPDIR is `tmpdir` (a
 * minimal container's situation).
 */
async function runWithoutTemporaryRoom(store: { dataDir: string }, tmpdir: string, args: string[]): Promise<CliRun> {
  const script = [
    "set -e",
    `mount --bind "$STORE" /media`,
    `mount --bind "$PROJECT" /mnt`,
    "mkdir -p /media/.ro-tmp && mount --bind /media/.ro-tmp /media/.ro-tmp && mount -o remount,bind,ro /media/.ro-tmp",
    "for folder in /tmp /var/tmp; do mount -t tmpfs -o size=16k tmpfs $folder; done",
    'exec "$@"',
  ].join("\n");
  const output = await new Deno.Command("unshare", {
    args: [
      "-m",
      "sh",
      "-c",
      script,
      "sh",
      ...cliCommand(args).map((part) => part === join(ROOT, "main.ts") ? "/mnt/main.ts" : part),
    ],
    env: cliEnv({ STORE: store.dataDir, PROJECT: ROOT, ATOCORE_DATA_DIR: "/media", TMPDIR: tmpdir }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return cliRunOf(output);
}

Deno.test("built-in driver, no temporary folder with room anywhere: its snapshots work, the module's say why not", async (t) => {
  using store = tempStore(SMALL);
  const env = storeEnv(store);
  const moduleStamp = await moduleSnapshot(store, "no temporary room"); // first: the module reuses a stamp taken this second
  const ownStamp = await createdStamp(env);
  const probe = await runWithoutTemporaryRoom(store, "/tmp", ["config", "--json"]);
  if (probe.code !== 0) {
    skipBecause(`cannot run in a mount namespace with tmpfs mounts here: ${probe.stderr.trim()}`);
    await t.step({ name: "mount namespace", ignore: true, fn: () => {} });
    return;
  }
  const builtin = ["--json", "--sqlite-driver", "builtin"];
  for (const tmpdir of ["/nonexistent-tmp", "/media/.ro-tmp", "/tmp"]) {
    const own = await runWithoutTemporaryRoom(store, tmpdir, ["validate", ownStamp, ...builtin]);
    assert.equal(own.code, 0, `TMPDIR=${tmpdir}: own snapshot: ${own.stdout} ${own.stderr}`);
    const module = await runWithoutTemporaryRoom(store, tmpdir, ["validate", moduleStamp, ...builtin]);
    assert.equal(module.code, 2, `TMPDIR=${tmpdir}: module snapshot: not checked is not invalid: ${module.stdout}`);
    assert.match(
      module.stderr,
      /could not check the integrity of \/media\/backups\/.*: no writable temporary folder with \d+ bytes free \(.*\/var\/tmp: no space left.*\); set TMPDIR to a folder with room/,
    );
    assert.equal(module.stderr.trim().split("\n").length, 1, "one line");
  }
  const created = await runWithoutTemporaryRoom(store, "/tmp", ["create", "--chroma", ...builtin]);
  assert.equal(created.code, 0, `create: ${created.stderr}`);
  assert.deepEqual(entryNames(join(store.backupDir, "failed")), []);
  const restored = await runWithoutTemporaryRoom(store, "/tmp", [
    "restore",
    ownStamp,
    "--confirm-service-stopped",
    ...builtin,
  ]);
  assert.equal(restored.code, 0, `restore: ${restored.stderr}`);
  assert.equal((restored.json as { restored_integrity_ok: boolean }).restored_integrity_ok, true);
  const header = (path: string) => [...Deno.readFileSync(path).subarray(18, 20)];
  assert.deepEqual(header(join(store.backupDir, "snapshots", ownStamp, "db", "atocore.db")), [1, 1], "rollback image");
  assert.deepEqual(header(store.db), [2, 2], "the restored database is in WAL mode again, as the live one was");
  assert.deepEqual(header(join(store.chromaDir, "chroma.sqlite3")), [2, 2], "and so is Chroma's");
});

Deno.test("a snapshot of format 1 (made before the metadata digest) validates, reported unbound", async () => {
  using store = await storeWithSnapshot();
  const path = join(store.root, "backup-metadata.json");
  const metadata = JSON.parse(Deno.readTextFileSync(path));
  for (const key of ["db_journal_mode", "chroma_db_journal_mode", "metadata_sha256"]) delete metadata[key];
  Deno.writeTextFileSync(path, JSON.stringify({ ...metadata, format_version: 1 }, null, 2) + "\n");
  const { code, result } = await validate(store.backupDir, store.stamp);
  assert.equal(code, 0, JSON.stringify(result.errors));
  assert.equal(result.metadata_bound, false);
  Deno.writeTextFileSync(path, JSON.stringify({ ...metadata, format_version: 2 }, null, 2) + "\n");
  const stripped = await validate(store.backupDir, store.stamp);
  assert.equal(stripped.code, 1, "format 2 without its digest is damaged");
  assert.ok(stripped.result.errors.includes("metadata_key_missing: metadata_sha256"), `${stripped.result.errors}`);
});

Deno.test("a manifest entry below a link the manifest lists is refused, not checked through the link (exit 1)", async () => {
  using store = await storeWithSnapshot();
  using outside = tempDir();
  const secret = join(outside.path, "secret");
  Deno.writeTextFileSync(secret, "not the snapshot's");
  Deno.symlinkSync(outside.path, join(store.root, "chroma", "elsewhere"));
  const digest = await crypto.subtle.digest("SHA-256", Deno.readFileSync(secret));
  const sha256 = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const metadata = JSON.parse(Deno.readTextFileSync(join(store.root, "backup-metadata.json")));
  const manifest = [
    ...metadata.manifest,
    { path: "chroma/elsewhere", symlink: outside.path },
    { path: "chroma/elsewhere/secret", size: Deno.statSync(secret).size, sha256 },
    { path: "chroma/chroma.sqlite3/below/a/file", size: 1, sha256 }, // missing, as ever
  ];
  relocateSnapshot(store.root, { manifest }); // bound again, as a writer of the backup folder could
  const { code, result } = await validate(store.backupDir, store.stamp);
  assert.equal(code, 1);
  assert.deepEqual(result.errors, [
    "manifest_path_through_link: chroma/elsewhere/secret",
    "manifest_file_missing: chroma/chroma.sqlite3/below/a/file",
  ]);
});
