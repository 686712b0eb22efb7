/**
 * What can be proved of the single binary where `deno compile` cannot run (its
 * runtime base cannot be downloaded here): the module graph is only local and
 * built-in modules, the tool works under exactly the binary's permissions, those
 * permissions deny subprocesses, and the compile task fails with
 * a clear message, leaving nothing, when the runtime base cannot be had or is not denort.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_INCLUDES, COMPILE_PERMISSIONS, DEFAULT_OUTPUT } from "../../scripts/compile.ts";
import { ROOT, runCli, tempDir } from "../_helpers.ts";

interface ModuleInfo {
  specifier: string;
  local?: string;
}

async function moduleGraph(): Promise<{ modules: ModuleInfo[]; npmPackages: object; redirects: object }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(ROOT, "main.ts")],
    stdout: "piped",
  }).output();
  assert.ok(output.success);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("main.ts's module graph has local modules under src/ (and deno.json), node: modules and only the npm packages pinned in deno.json", async () => {
  const graph = await moduleGraph();
  const pinned = Object.values(JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).imports as object);
  for (const [from, to] of Object.entries(graph.redirects as Record<string, string>)) {
    // the one redirect allowed: Deno's own from a pinned npm: specifier to its resolved npm:/ form
    assert.ok(pinned.includes(from) && to === from.replace(/^npm:/, "npm:/"), `redirect ${from} -> ${to}`);
  }
  const schemes = new Set(graph.modules.map((module) => module.specifier.split(":")[0]));
  for (const scheme of schemes) assert.ok(["file", "node", "npm"].includes(scheme), `no ${scheme}: module`);
  for (const value of pinned) assert.match(value, /^npm:[a-z0-9-]+@\d+\.\d+\.\d+$/, "an exact version");
  const direct = graph.modules.filter((module) => module.specifier.startsWith("npm:")).map((module) =>
    module.specifier.replace(/^npm:\//, "npm:")
  );
  for (const specifier of direct) assert.ok(pinned.includes(specifier), `${specifier} is pinned in deno.json`);
  // Every npm package in the graph is a pinned one or a dependency of one (ssh2's optional native parts,
  // cpu-features and nan, are listed but never built: there is no node_modules folder to run their scripts in).
  const packages = graph.npmPackages as Record<string, { dependencies: string[] }>;
  const reachable = new Set<string>(pinned.map((value: string) => value.slice("npm:".length)));
  for (const name of reachable) for (const dependency of packages[name]?.dependencies ?? []) reachable.add(dependency);
  assert.deepEqual(Object.keys(packages).sort(), [...reachable].sort());
  assert.ok(direct.includes("npm:aws4fetch@1.0.20"), "the S3 signer is in the graph");
  const lock = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.lock")));
  for (const value of pinned) assert.ok(value in lock.specifiers, `${value} is in deno.lock`);
  const local = graph.modules.filter((module) => module.specifier.startsWith("file:")).map((module) => module.local!);
  assert.ok(local.includes(join(ROOT, "main.ts")));
  for (const path of local) {
    const top = path === join(ROOT, "main.ts") || path === join(ROOT, "deno.json");
    assert.ok(top || path.startsWith(join(ROOT, "src") + "/"), `outside src/: ${path}`);
  }
  assert.ok(local.includes(join(ROOT, "src", "sample", "store.ts")), "drill --sample's store builder is in the graph");
});

Deno.test("every module the program starts as a worker is embedded by the compile task, and its graph is local", async () => {
  const started: string[] = [];
  const search = (folder: string) => {
    for (const entry of Deno.readDirSync(join(ROOT, folder))) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) search(path);
      const text = entry.isFile ? Deno.readTextFileSync(join(ROOT, path)) : "";
      for (const match of text.matchAll(/(?:new Worker|newWorker)\(new URL\("\.\/([^"]+)"/g)) {
        started.push(`${folder}/${match[1]}`);
      }
    }
  };
  search("src");
  assert.deepEqual(started.toSorted(), COMPILE_INCLUDES.toSorted());
  for (const path of COMPILE_INCLUDES) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", join(ROOT, path)],
      stdout: "piped",
    }).output();
    const graph = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.ok(
      graph.modules.every((module: ModuleInfo) =>
        module.specifier.startsWith("file://") || module.specifier.startsWith("node:")
      ),
      `${path} imports only local and node: modules`,
    );
  }
});

Deno.test("the compile task, the demo task and the end-to-end tests use the same permission flags", () => {
  assert.deepEqual(COMPILE_PERMISSIONS, [
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-ffi",
    "--allow-net",
    "--no-prompt",
  ]);
  const tasks = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks as Record<string, string>;
  assert.equal(tasks.demo, `deno run ${COMPILE_PERMISSIONS.join(" ")} main.ts drill --sample`);
  assert.equal(tasks.compile, `deno run ${TASK_PERMISSIONS.join(" ")} scripts/compile.ts`);
});

Deno.test("under exactly the compile permissions the tool runs end to end with the built-in driver when libsqlite3 is missing", async () => {
  using tmp = tempDir();
  const run = await runCli(["drill", "--sample"], {
    env: { TMPDIR: tmp.path, ATOCORE_SQLITE_LIB: join(tmp.path, "no-libsqlite3.so") },
  });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { ok: boolean; create: { sqlite_driver: string } };
  assert.equal(result.ok, true);
  assert.equal(result.create.sqlite_driver, "builtin");
});

Deno.test("the compile permissions deny subprocesses without prompting and allow the network (SFTP and S3 repositories)", async () => {
  using tmp = tempDir();
  const probe = join(tmp.path, "probe.ts");
  Deno.writeTextFileSync(
    probe,
    `const outcomes = {};
try { new Deno.Command("true").outputSync(); outcomes.run = "allowed"; } catch (error) { outcomes.run = error.name; }
try { (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close(); outcomes.net = "allowed"; } catch (error) { outcomes.net = error.name; }
console.log(JSON.stringify(outcomes));`,
  );
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_PERMISSIONS, probe],
    stdin: "null",
    stdout: "piped",
  }).output();
  assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), {
    run: "NotCapable",
    net: "ConnectionRefused",
  });
});

/** The permissions `deno task compile` runs its script with. */
const TASK_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-run"];

/** Run `scripts/compile.ts` as `deno task compile` does, with a clean environment plus `env`. */
async function runCompile(env: Record<string, string>, output: string) {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...TASK_PERMISSIONS,
      join(ROOT, "scripts", "compile.ts"),
      "--output",
      output,
    ],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: result.code, stderr: new TextDecoder().decode(result.stderr) };
}

Deno.test("deno task compile without a reachable download host or cached denort: one line, exit 1, nothing left", async () => {
  using denoDir = tempDir();
  using out = tempDir();
  const output = join(out.path, "dist", "atocore-backup");
  const dead = "http://127.0.0.1:9";
  const run = await runCompile({ DENO_DIR: denoDir.path, HTTPS_PROXY: dead, HTTP_PROXY: dead }, output);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
  assert.match(run.stderr, /^compile: nothing was built: the Deno runtime base \(denort /);
  assert.ok(run.stderr.includes(`https://dl.deno.land/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`));
  assert.match(run.stderr, /DENORT_BIN=\/path\/to\/denort deno task compile/);
  assert.match(run.stderr, /DENO_DIR=\/path\/to\/deno_dir deno task compile/);
  assert.deepEqual([...Deno.readDirSync(out.path)], [], "no dist/ folder left, empty or not");
  assert.equal(DEFAULT_OUTPUT, "dist/atocore-backup");
});

Deno.test("deno task compile with a DENORT_BIN that is not denort removes what it built and fails naming it", async () => {
  using out = tempDir();
  for (const denort of ["/bin/true", Deno.execPath()]) {
    const output = join(out.path, "dist", "atocore-backup");
    const run = await runCompile({ DENORT_BIN: denort }, output);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
    assert.ok(run.stderr.startsWith(`compile: nothing was built: ${output} is not atocore-backup `), run.stderr);
    assert.ok(run.stderr.includes(`: DENORT_BIN=${denort} is not denort ${Deno.version.deno}; `), run.stderr);
    assert.deepEqual([...Deno.readDirSync(out.path)], [], `${denort}: nothing left at --output`);
  }
});

Deno.test("deno task compile with DENORT_BIN naming no file says so and exits 1", async () => {
  using out = tempDir();
  const run = await runCompile({ DENORT_BIN: join(out.path, "denort") }, join(out.path, "atocore-backup"));
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^compile: DENORT_BIN is not a file: .*denort; point it at an unzipped denort /);
});

Deno.test("deployment examples: the container has neither Node nor Deno, and the systemd units' arguments parse", async () => {
  const deploy = join(ROOT, "scripts", "deploy");
  const containerfile = Deno.readTextFileSync(join(deploy, "Containerfile"));
  const instructions = containerfile.split("\n").filter((line) => line && !line.startsWith("#"));
  assert.ok(instructions.some((line) => line === "COPY dist/atocore-backup /usr/local/bin/atocore-backup"));
  assert.ok(!instructions.some((line) => /\b(node|nodejs|npm|deno)\b/i.test(line)), "no Node or Deno installed");
  const service = Deno.readTextFileSync(join(deploy, "systemd", "atocore-backup@.service"));
  assert.match(service, /^ExecStart=\/usr\/local\/bin\/atocore-backup %i \$ARGS$/m);
  assert.match(service, /^PrivateNetwork=yes$/m);
  const network = Deno.readTextFileSync(join(deploy, "systemd", "network.conf")); // the drop-in for sftp:// and s3://
  assert.match(network, /^\[Service\]\nPrivateNetwork=no\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$/m);
  const timers = { create: "*-*-* 02:15:00 UTC", cleanup: "Sun *-*-* 04:30:00 UTC", drill: "*-*-01 05:00:00 UTC" };
  for (const [command, calendar] of Object.entries(timers)) {
    const timer = Deno.readTextFileSync(join(deploy, "systemd", `atocore-backup-${command}.timer`));
    assert.match(timer, new RegExp(`^Unit=atocore-backup@${command}\\.service$`, "m"));
    assert.ok(timer.includes(`OnCalendar=${calendar}\n`));
    const env = Deno.readTextFileSync(join(deploy, "systemd", "env", `${command}.env`));
    const args = /^ARGS=(.*)$/m.exec(env)![1].split(/\s+/);
    const parsed = await runCli([command, ...args, "--help"]);
    assert.equal(parsed.code, 0, `${command} ${args.join(" ")}: ${parsed.stderr}`);
  }
});
