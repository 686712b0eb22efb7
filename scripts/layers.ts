/**
 * Prints every import that goes up the layers of `src/` (a lower folder importing a higher one), every import of
 * main.ts past the command layer, and every cycle of files; exits 1 if it printed any:
 * `deno run --allow-read scripts/layers.ts`.
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The layers from the top: a file may import only from its own layer or one below it. */
const LAYERS = [
  "main.ts",
  "src/cli",
  "src/sample",
  "src/ops",
  "src/repo",
  "src/path_overlap.ts",
  "src/config.ts",
  "src/report",
  "src/snapshot",
  "src/sqlite",
  "src/crypto",
  "src/fs",
  "src/sys",
  "src/text",
  "src/duration.ts",
  "src/errors.ts",
  "src/version.ts",
];

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|new URL\(\s*)"(\.{1,2}\/[^"]+\.ts)"/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(join(ROOT, file));
  return [...text.matchAll(IMPORT)].map((m) => relative(ROOT, resolve(ROOT, dirname(file), m[1])));
}

function layerOf(file: string): number {
  return LAYERS.findIndex((layer) => file === layer || file.startsWith(`${layer}/`));
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, stack: string[]) => {
    const at = stack.indexOf(file);
    if (at >= 0) return void found.push([...stack.slice(at), file]);
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...stack, file]);
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file, []);
  return found;
}

const graph = new Map<string, string[]>();
for (const file of ["main.ts", ...sourceFiles("src")]) graph.set(file, importsOf(file));
const upward: string[] = [];
const unplaced = [...graph.keys()].filter((file) => layerOf(file) < 0);
for (const file of unplaced) upward.push(`${file} is in no layer: add its folder to LAYERS`);
for (const [file, targets] of graph) {
  if (layerOf(file) < 0) continue;
  for (const target of targets.filter((t) => layerOf(t) < layerOf(file))) {
    upward.push(`${LAYERS[layerOf(file)]} -> ${LAYERS[layerOf(target)]}: ${file} imports ${target}`);
  }
}
for (const line of upward.sort()) console.log(`upward  ${line}`);
// main.ts only parses and dispatches: besides src/cli/ it may read only the files of src/ itself (errors, version)
const past = graph.get("main.ts")!.filter((target) => !target.startsWith("src/cli/") && target.split("/").length > 2);
for (const target of past) console.log(`main    main.ts reaches past src/cli to ${target}`);
const loops = cycles(graph);
for (const loop of loops) console.log(`cycle   ${loop.join(" -> ")}`);
console.log(
  `${upward.length} upward imports, ${past.length} past src/cli from main.ts, ${loops.length} cycles of files`,
);
if (upward.length + past.length + loops.length > 0) Deno.exit(1);
