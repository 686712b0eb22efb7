/**
 * Configuration: flag, then environment, then a default under ATOCORE_DATA_DIR, then ./data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig, resolveRemoteSettings } from "../../src/config.ts";
import { UsageError } from "../../src/errors.ts";
import { pathFlags } from "../../src/ops/restore_intent.ts";
import { makeSampleStore } from "../../scripts/sample_store.ts";
import { READ_VARIABLES } from "../../src/cli/environment.ts";
import { ROOT, runCli, tempDir } from "../_helpers.ts";

const CWD = "/srv/work";

Deno.test("defaults are under ./data of the working folder", () => {
  const config = resolveConfig({}, {}, CWD);
  assert.deepEqual(config, {
    db: { path: "/srv/work/data/atocore.db", source: "default", from: "./data" },
    backupDir: { path: "/srv/work/data/backups", source: "default", from: "./data" },
    registry: { path: "/srv/work/data/project-registry.json", source: "default", from: "./data" },
    chromaDir: { path: "/srv/work/data/chroma", source: "default", from: "./data" },
  });
});

Deno.test("ATOCORE_DATA_DIR moves every default, relative to the working folder when relative", () => {
  const absolute = resolveConfig({}, { ATOCORE_DATA_DIR: "/var/lib/atocore" }, CWD);
  assert.equal(absolute.db.path, "/var/lib/atocore/atocore.db");
  assert.equal(absolute.chromaDir.path, "/var/lib/atocore/chroma");
  assert.deepEqual(absolute.backupDir, {
    path: "/var/lib/atocore/backups",
    source: "default",
    from: "ATOCORE_DATA_DIR",
  });
  const relative = resolveConfig({}, { ATOCORE_DATA_DIR: "store/../state" }, CWD);
  assert.equal(relative.registry.path, "/srv/work/state/project-registry.json");
});

Deno.test("an environment variable beats ATOCORE_DATA_DIR", () => {
  const config = resolveConfig({}, {
    ATOCORE_DATA_DIR: "/var/lib/atocore",
    ATOCORE_DB_PATH: "/db/live.db",
    ATOCORE_BACKUP_DIR: "/mnt/backups",
    ATOCORE_PROJECT_REGISTRY_PATH: "/etc/atocore/registry.json",
    ATOCORE_CHROMA_PATH: "/vectors",
  }, CWD);
  assert.deepEqual(config.db, { path: "/db/live.db", source: "env", from: "ATOCORE_DB_PATH" });
  assert.deepEqual(config.backupDir, { path: "/mnt/backups", source: "env", from: "ATOCORE_BACKUP_DIR" });
  assert.deepEqual(config.registry, {
    path: "/etc/atocore/registry.json",
    source: "env",
    from: "ATOCORE_PROJECT_REGISTRY_PATH",
  });
  assert.deepEqual(config.chromaDir, { path: "/vectors", source: "env", from: "ATOCORE_CHROMA_PATH" });
});

Deno.test("a flag beats the environment", () => {
  const config = resolveConfig(
    { db: "/flag/a.db", backupDir: "/flag/backups", registry: "/flag/r.json", chromaDir: "/flag/chroma" },
    { ATOCORE_DB_PATH: "/env/a.db", ATOCORE_BACKUP_DIR: "/env/b", ATOCORE_DATA_DIR: "/env/data" },
    CWD,
  );
  assert.deepEqual(config.db, { path: "/flag/a.db", source: "flag", from: "--db" });
  assert.deepEqual(config.backupDir, { path: "/flag/backups", source: "flag", from: "--backup-dir" });
  assert.deepEqual(config.registry, { path: "/flag/r.json", source: "flag", from: "--registry" });
  assert.deepEqual(config.chromaDir, { path: "/flag/chroma", source: "flag", from: "--chroma-dir" });
});

Deno.test("each path is resolved on its own: one flag, one variable, the rest defaults", () => {
  const config = resolveConfig({ backupDir: "/flag/backups" }, { ATOCORE_DB_PATH: "/env/a.db" }, CWD);
  assert.equal(config.backupDir.source, "flag");
  assert.equal(config.db.source, "env");
  assert.equal(config.registry.source, "default");
  assert.equal(config.chromaDir.path, "/srv/work/data/chroma");
});

Deno.test("relative flags and variables are made absolute against the working folder", () => {
  const config = resolveConfig({ db: "live/../a.db" }, { ATOCORE_BACKUP_DIR: "./b" }, CWD);
  assert.equal(config.db.path, "/srv/work/a.db");
  assert.equal(config.backupDir.path, "/srv/work/b");
});

Deno.test("an empty flag or path variable is a usage error naming it, never taken as unset", () => {
  const variables = [
    "ATOCORE_DB_PATH",
    "ATOCORE_BACKUP_DIR",
    "ATOCORE_PROJECT_REGISTRY_PATH",
    "ATOCORE_CHROMA_PATH",
    "ATOCORE_DATA_DIR",
    "ATOCORE_SQLITE_LIB",
  ];
  for (const name of variables) {
    assert.throws(() => resolveConfig({}, { [name]: "" }, CWD), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, new RegExp(`^${name} is set but empty; give it a path or unset it`));
      return true;
    });
  }
  assert.throws(
    () => resolveConfig({ db: "" }, {}, CWD),
    /^UsageError: --db needs a path, not an empty value; give one, or leave --db out$/,
  );
  assert.throws(() => resolveConfig({ chromaDir: "" }, {}, CWD), /--chroma-dir needs a path/);
});

Deno.test("a path of blanks is empty, and one that begins or ends with whitespace is refused, naming its source", () => {
  const refused = (flags: Parameters<typeof resolveConfig>[0], env: Record<string, string>, message: RegExp) =>
    assert.throws(() => resolveConfig(flags, env, CWD), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    });
  refused({}, { ATOCORE_DB_PATH: "  " }, /^ATOCORE_DB_PATH is set but empty/);
  refused({}, { ATOCORE_BACKUP_DIR: "/srv/backups\n" }, /^ATOCORE_BACKUP_DIR begins or ends with whitespace/);
  // a leading space would make the path relative to the working folder
  refused({}, { ATOCORE_DATA_DIR: " /srv/data" }, /^ATOCORE_DATA_DIR begins or ends with whitespace/);
  refused({ db: "\t" }, {}, /^--db needs a path, not an empty value; give one, or leave --db out$/);
  refused({ chromaDir: "/srv/chroma " }, {}, /^--chroma-dir begins or ends with whitespace/);
  const remote = (env: Record<string, string>) => resolveRemoteSettings({}, env, CWD);
  assert.throws(() => remote({ ATOCORE_BACKUP_REMOTE: " /mnt/offsite" }), /ATOCORE_BACKUP_REMOTE begins or ends/);
  assert.throws(() => remote({ ATOCORE_SSH_KEY_FILE: "/k\n" }), /ATOCORE_SSH_KEY_FILE begins or ends/);
  assert.equal(resolveConfig({}, { ATOCORE_DB_PATH: "/srv/a b.db" }, CWD).db.path, "/srv/a b.db");
});

Deno.test("a path that begins with ~/ or is ~ (the shell did not expand it) is refused, naming its source", async () => {
  const unexpanded = /begins with "~", which the shell did not expand .*; write the path out in full/;
  for (
    const [flags, env, from] of [
      [{}, { ATOCORE_BACKUP_DIR: "~/backups" }, "ATOCORE_BACKUP_DIR"],
      [{}, { ATOCORE_DATA_DIR: "~" }, "ATOCORE_DATA_DIR"],
      [{ db: "~/atocore.db" }, {}, "--db"],
    ] as const
  ) {
    assert.throws(() => resolveConfig(flags, env, CWD), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, new RegExp(`^${from} ${unexpanded.source}`));
      return true;
    });
  }
  const remote = (flags: Record<string, string>, env: Record<string, string>) => resolveRemoteSettings(flags, env, CWD);
  assert.throws(() => remote({}, { ATOCORE_BACKUP_REMOTE: "~/offsite" }), /ATOCORE_BACKUP_REMOTE begins with "~"/);
  assert.throws(() => remote({ identity: "~/key.txt" }, {}), /--identity begins with "~"/);
  assert.throws(() => remote({}, { ATOCORE_SSH_KNOWN_HOSTS: "~/.ssh/kh" }), /ATOCORE_SSH_KNOWN_HOSTS begins with/);
  assert.throws(() => remote({ recipientsFile: "~/r.txt" }, {}), /--recipients-file begins with "~"/);
  assert.equal(resolveConfig({ db: "/srv/~/a.db" }, { ATOCORE_BACKUP_DIR: "~backups" }, CWD).db.path, "/srv/~/a.db");
  using dir = tempDir();
  for (
    const [args, env, from] of [
      [["create"], { ATOCORE_BACKUP_DIR: "~/backups" }, "ATOCORE_BACKUP_DIR"],
      [["restore", "20260101T000000Z", "--to=~/aside"], {}, "--to"],
      [["create", "--metrics-file=~/atocore.prom"], {}, "--metrics-file"],
    ] as const
  ) {
    const run = await runCli([...args], { cwd: dir.path, env });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`^atocore-backup: error: ${from} ${unexpanded.source}`));
    assert.deepEqual([...Deno.readDirSync(dir.path)], [], "something was made in the working folder");
  }
});

Deno.test("a secret key given as a store path, flag value or argument is refused unechoed, and nothing is made", async () => {
  using dir = tempDir();
  const secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
  const runs: [string[], Record<string, string>, string][] = [
    [["create"], { ATOCORE_BACKUP_DIR: secret }, "ATOCORE_BACKUP_DIR"],
    [["create", "--db", secret], {}, "--db"],
    [["create", `--metrics-file=${secret}`], {}, "--metrics-file"],
    [["validate", secret], {}, "validate's argument"],
    [["create", "--chroma-dir=-----BEGIN OPENSSH PRIVATE KEY-----"], {}, "--chroma-dir"],
  ];
  for (const [args, env, from] of runs) {
    const run = await runCli(args, { cwd: dir.path, env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(`error: ${from} was given an? [a-z ]*key itself; give the path of the key file`),
    );
    assert.ok(!run.stderr.includes("QQQQ") && !run.stdout.includes("QQQQ"), run.stderr);
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "something was made");
  const named = await runCli(["list", "--backup-dir", join(dir.path, "age-secret-key-1-old")], { cwd: dir.path });
  assert.match(named.stderr, /no backup folder at .*age-secret-key-1-old/, "a path that only names a key is a path");
});

Deno.test("ATOCORE_DB_PATH= does not back up ./data/atocore.db: create exits 2 naming the variable, makes nothing", async () => {
  using dir = tempDir();
  makeSampleStore(join(dir.path, "data"), { dbMiB: 1, chromaMiB: 1 });
  for (const name of ["ATOCORE_DB_PATH", "ATOCORE_BACKUP_DIR", "ATOCORE_DATA_DIR", "ATOCORE_SQLITE_LIB"]) {
    const run = await runCli(["create"], { cwd: dir.path, env: { [name]: "" } });
    assert.equal(run.code, 2, `${name}=: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`error: ${name} is set but empty`));
    assert.deepEqual([...Deno.readDirSync(join(dir.path, "data"))].map((entry) => entry.name).sort(), [
      "atocore.db",
      "chroma",
      "project-registry.json",
    ]);
  }
});

Deno.test("the config command prints the resolved paths, their sources and the driver", async () => {
  using dir = tempDir();
  const run = await runCli(
    ["config", "--json", "--db", "live.db", "--sqlite-driver", "builtin"],
    { cwd: dir.path, env: { ATOCORE_BACKUP_DIR: "/mnt/backups", ATOCORE_DATA_DIR: "state" } },
  );
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as Record<string, { path?: string; source?: string; from?: string; driver?: string }>;
  assert.deepEqual(result.db, { path: join(dir.path, "live.db"), source: "flag", from: "--db" });
  assert.deepEqual(result.backupDir, { path: "/mnt/backups", source: "env", from: "ATOCORE_BACKUP_DIR" });
  assert.deepEqual(result.registry, {
    path: join(dir.path, "state", "project-registry.json"),
    source: "default",
    from: "ATOCORE_DATA_DIR",
  });
  assert.equal(result.chromaDir.path, join(dir.path, "state", "chroma"));
  assert.equal(result.sqlite.driver, "builtin");
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "config creates nothing");
});

Deno.test("the config command refuses an unknown driver and an unknown flag with exit 2", async () => {
  const driver = await runCli(["config", "--sqlite-driver", "sqlite4"]);
  assert.equal(driver.code, 2);
  assert.match(driver.stderr, /--sqlite-driver must be one of auto, ffi, builtin/);
  const flag = await runCli(["config", "--database", "x.db"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /config: .*--database/);
});

Deno.test("the stall timeout: flag, else ATOCORE_BACKUP_STALL_TIMEOUT, else the backend's; config shows its source", async () => {
  const stall = (run: { json: unknown }) => (run.json as { remote: { stallTimeout: unknown } }).remote.stallTimeout;
  const fromEnv = await runCli(["config"], { env: { ATOCORE_BACKUP_STALL_TIMEOUT: "5m" } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.deepEqual(stall(fromEnv), { value: 300, source: "env", from: "ATOCORE_BACKUP_STALL_TIMEOUT" });
  const fromFlag = await runCli(["config", "--json", "--stall-timeout", "90s"], {
    env: { ATOCORE_BACKUP_STALL_TIMEOUT: "5m" },
  });
  assert.deepEqual(stall(fromFlag), { value: 90, source: "flag", from: "--stall-timeout" });
  assert.equal(stall(await runCli(["config"], { env: {} })), null, "unset: each backend's own default");
});

Deno.test("a stall timeout that is not a duration, zero, over a day or empty is refused with exit 2, naming it", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--stall-timeout", "fast"], {}, /--stall-timeout must be a duration such as 36h, 2d or 90m, not "fast"/],
    [["--stall-timeout", "0s"], {}, /--stall-timeout must be between 1s and 1d, not "0s"/],
    [[], { ATOCORE_BACKUP_STALL_TIMEOUT: "2d" }, /ATOCORE_BACKUP_STALL_TIMEOUT must be between 1s and 1d/],
    [[], { ATOCORE_BACKUP_STALL_TIMEOUT: "" }, /ATOCORE_BACKUP_STALL_TIMEOUT is set but empty/],
  ];
  for (const [args, env, message] of cases) {
    const run = await runCli(["config", ...args], { env });
    assert.equal(run.code, 2, `${args.join(" ")} ${JSON.stringify(env)}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  const push = await runCli(["push", "--latest", "--stall-timeout", "1x"], { env: {} });
  assert.equal(push.code, 2);
  assert.match(push.stderr, /--stall-timeout must be a duration/);
});

Deno.test("the undo and finish commands name the paths a run was given as flags, and only those", () => {
  const config = resolveConfig(
    { backupDir: "/srv/b k", db: "/srv/live/atocore.db" },
    { ATOCORE_CHROMA_PATH: "/c" },
    CWD,
  );
  assert.equal(pathFlags(config), " --backup-dir '/srv/b k' --db /srv/live/atocore.db");
  assert.equal(
    pathFlags(config, { chromaDir: "/elsewhere" }),
    " --backup-dir '/srv/b k' --db /srv/live/atocore.db --chroma-dir /elsewhere",
  );
  assert.equal(pathFlags(resolveConfig({}, {}, CWD)), "");
});

Deno.test("READ_VARIABLES names every variable the source reads, so each is checked for UTF-8 before a command runs", () => {
  const named = new Set<string>();
  const walk = (folder: string) => {
    for (const entry of Deno.readDirSync(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts")) {
        for (const match of Deno.readTextFileSync(path).matchAll(/\b(ATOCORE_[A-Z0-9_]+|AWS_[A-Z0-9_]+)\b/g)) {
          named.add(match[1]);
        }
      }
    }
  };
  walk(join(ROOT, "src"));
  assert.ok(named.size > 15, [...named].join(" "));
  assert.deepEqual([...named].filter((name) => !READ_VARIABLES.includes(name)), []);
});
