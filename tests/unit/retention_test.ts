/**
 * The retention policy against the reference module's own decisions (golden
 * fixtures made by scripts/make_retention_fixtures.py), and custom counts by hand.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { applyRetention, DEFAULT_POLICY, type RetentionPolicy, yw } from "../../src/snapshot/retention.ts";
import { factGuards, newestValidGuard, retainByPolicy, withGuards } from "../../src/snapshot/retention_guards.ts";
import { isStamp } from "../../src/snapshot/stamp.ts";
import { ROOT } from "../_helpers.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "retention");

/** One golden fixture: folder names, and the module's decisions on them. */
interface Fixture {
  name: string;
  policy: RetentionPolicy;
  folders: string[];
  expected: { keep: string[]; remove: string[]; unparseable: string[] };
  reference_result: { dry_run: { kept: number; would_delete: number } };
}

function loadFixtures(): Fixture[] {
  return [...Deno.readDirSync(FIXTURES)]
    .filter((entry) => entry.name.endsWith(".json") && entry.name !== "week_numbers.json")
    .map((entry) => JSON.parse(Deno.readTextFileSync(join(FIXTURES, entry.name))) as Fixture)
    .sort((a, b) => a.name.localeCompare(b.name));
}

const fixtures = loadFixtures();

Deno.test("there are golden fixtures of every kind the policy must handle", () => {
  assert.ok(fixtures.length >= 50, `only ${fixtures.length} fixtures`);
  for (const kind of ["daily_cron", "hourly_bursts", "long_gaps", "year_edge", "not_stamps", "lax_names", "empty"]) {
    assert.ok(fixtures.some((fixture) => fixture.name.startsWith(kind)), `no ${kind} fixture`);
  }
});

Deno.test("default policy makes exactly the reference module's decisions on every fixture", () => {
  for (const fixture of fixtures) {
    assert.deepEqual(fixture.policy, DEFAULT_POLICY, fixture.name);
    const stamps = fixture.folders.filter(isStamp);
    assert.deepEqual(
      fixture.folders.filter((name) => !isStamp(name)).sort(),
      fixture.expected.unparseable,
      fixture.name,
    );
    const decision = applyRetention(stamps, DEFAULT_POLICY);
    assert.deepEqual(decision.keep, fixture.expected.keep, fixture.name);
    assert.deepEqual(decision.remove, fixture.expected.remove, fixture.name);
    assert.equal(decision.keep.length, fixture.reference_result.dry_run.kept, fixture.name);
    assert.equal(decision.remove.length, fixture.reference_result.dry_run.would_delete, fixture.name);
  }
});

Deno.test("every kept stamp has its reasons, and each rule keeps at most its count of distinct buckets", () => {
  for (const fixture of fixtures) {
    const decision = applyRetention(fixture.folders.filter(isStamp), DEFAULT_POLICY);
    assert.deepEqual(Object.keys(decision.reasons).sort(), [...decision.keep].sort(), fixture.name);
    for (const rule of ["daily", "weekly", "monthly"] as const) {
      const buckets = Object.values(decision.reasons).flat().filter((reason) => reason.rule === rule)
        .map((reason) => reason.bucket);
      assert.equal(new Set(buckets).size, buckets.length, `${fixture.name}: a ${rule} bucket kept twice`);
      assert.ok(buckets.length <= DEFAULT_POLICY[rule], `${fixture.name}: too many ${rule}`);
    }
  }
});

Deno.test("the weekly bucket is Python's %Y-W%W, week 00 before the first Monday included", () => {
  const table = JSON.parse(Deno.readTextFileSync(join(FIXTURES, "week_numbers.json"))).weeks as Record<
    string,
    string
  >;
  assert.ok(Object.keys(table).length > 1000);
  for (const [day, week] of Object.entries(table)) {
    assert.equal(yw(new Date(`${day}T12:00:00Z`)), week, day);
    assert.equal(yw(new Date(`${day}T00:00:00Z`)), week, `${day} at midnight`);
    assert.equal(yw(new Date(`${day}T23:59:59Z`)), week, `${day} just before midnight`);
  }
});

Deno.test("a bigger count never lets go of a stamp a smaller one keeps", () => {
  for (const fixture of fixtures.filter((fixture) => fixture.folders.length > 30)) {
    const stamps = fixture.folders.filter(isStamp);
    for (const rule of ["daily", "weekly", "monthly"] as const) {
      let previous = new Set<string>();
      for (let count = 0; count <= 14; count += 1) {
        const kept = new Set(applyRetention(stamps, { ...DEFAULT_POLICY, [rule]: count }).keep);
        for (const stamp of previous) assert.ok(kept.has(stamp), `${fixture.name}: ${rule} ${count} lost ${stamp}`);
        previous = kept;
      }
    }
  }
});

Deno.test("counts of 0 keep nothing (the module always kept one)", () => {
  const stamps = ["20261101T010000Z", "20261108T010000Z", "20261125T010000Z"];
  const decision = applyRetention(stamps, { daily: 0, weekly: 0, monthly: 0 });
  assert.deepEqual(decision.keep, []);
  assert.deepEqual(decision.remove, ["20261125T010000Z", "20261108T010000Z", "20261101T010000Z"]);
  assert.deepEqual(decision.reasons, {});
});

Deno.test("custom daily count keeps the newest snapshot of that many days", () => {
  // A cron at 01:00 and 13:00 every day of November 2026 (the 1st, 8th, 15th, 22nd and 29th are Sundays).
  const stamps = Array.from({ length: 30 }, (_, day) => day + 1).flatMap((day) => [
    `202611${String(day).padStart(2, "0")}T010000Z`,
    `202611${String(day).padStart(2, "0")}T130000Z`,
  ]);
  const decision = applyRetention(stamps, { daily: 10, weekly: 0, monthly: 0 });
  assert.deepEqual(decision.keep, Array.from({ length: 10 }, (_, n) => `202611${30 - n}T130000Z`));
  assert.equal(decision.remove.length, 50);
  assert.deepEqual(decision.reasons["20261121T130000Z"], [{ rule: "daily", bucket: "2026-11-21" }]);
});

Deno.test("custom weekly and monthly counts, and reasons naming every rule that keeps a stamp", () => {
  const stamps = [
    "20260201T090000Z", // Sunday and a 1st
    "20260201T030000Z", // same day, older: kept by nothing
    "20260208T090000Z", // Sunday
    "20260215T090000Z", // Sunday
    "20260301T090000Z", // Sunday and a 1st
    "20260302T090000Z",
    "20260401T090000Z", // Wednesday, a 1st
  ];
  const decision = applyRetention(stamps, { daily: 1, weekly: 2, monthly: 3 });
  assert.deepEqual(decision.reasons, {
    "20260401T090000Z": [{ rule: "daily", bucket: "2026-04-01" }, { rule: "monthly", bucket: "2026-04" }],
    "20260301T090000Z": [{ rule: "weekly", bucket: "2026-W08" }, { rule: "monthly", bucket: "2026-03" }],
    "20260215T090000Z": [{ rule: "weekly", bucket: "2026-W06" }],
    "20260201T090000Z": [{ rule: "monthly", bucket: "2026-02" }],
  });
  assert.deepEqual(decision.keep, ["20260401T090000Z", "20260301T090000Z", "20260215T090000Z", "20260201T090000Z"]);
  assert.deepEqual(decision.remove, ["20260302T090000Z", "20260208T090000Z", "20260201T030000Z"]);
});

Deno.test("the decision ignores input order and duplicates", () => {
  const fixture = fixtures.find((candidate) => candidate.name === "random_1")!;
  const stamps = fixture.folders.filter(isStamp);
  const shuffled = [...stamps].reverse().concat(stamps.slice(0, 20));
  assert.deepEqual(applyRetention(shuffled, DEFAULT_POLICY), applyRetention(stamps, DEFAULT_POLICY));
});

Deno.test("names that are not plain stamps and bad counts are refused, not decided on", () => {
  for (const name of ["notes", "20261101t010203z", "2026111T010203Z", "20261301T000000Z", "../20261101T010203Z"]) {
    assert.throws(() => applyRetention(["20261101T010203Z", name], DEFAULT_POLICY), RangeError, name);
  }
  for (const count of [-1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => applyRetention([], { ...DEFAULT_POLICY, weekly: count }), RangeError, String(count));
  }
});

Deno.test("guards change no decision of the default policy on a fixture holding no pre-restore or sequence", () => {
  for (const fixture of fixtures) {
    const stamps = fixture.folders.filter(isStamp);
    const facts = stamps.map((stamp) => ({ stamp, sequence: null, preRestore: false, restoringStamp: null }));
    const now = new Date("2200-01-01T00:00:00Z"); // after every fixture: the module has no clock
    const guarded = withGuards(applyRetention(stamps, DEFAULT_POLICY), factGuards(facts, { now, preRestoreDays: 7 }));
    assert.deepEqual(guarded.keep, fixture.expected.keep, fixture.name);
    assert.deepEqual(guarded.remove, fixture.expected.remove, fixture.name);
  }
});

Deno.test("guards keep the newest stamp, the highest sequence, and pre-restore snapshots younger than the window", () => {
  const fact = (stamp: string, sequence: number | null, preRestore = false) => ({
    stamp,
    sequence,
    preRestore,
    restoringStamp: preRestore ? "20261101T010000Z" : null,
  });
  const facts = [
    fact("20261102T010000Z", 1),
    fact("20261103T010000Z", 4), // the clock was set back after 20261105T010000Z was made
    fact("20261104T010000Z", 2, true),
    fact("20261105T010000Z", 3),
    fact("20261106T010000Z", null, true), // the module's, or older: no sequence
  ];
  const stamps = facts.map((one) => one.stamp);
  const policy = { daily: 0, weekly: 0, monthly: 1 }; // no 1st among them: the policy keeps nothing
  assert.deepEqual(applyRetention(stamps, policy).keep, []);
  const at = (iso: string) =>
    withGuards(applyRetention(stamps, policy), factGuards(facts, { now: new Date(iso), preRestoreDays: 7 }));

  const early = at("2026-11-11T00:59:59Z");
  assert.deepEqual(early.keep, ["20261106T010000Z", "20261104T010000Z", "20261103T010000Z"]);
  assert.deepEqual(early.remove, ["20261105T010000Z", "20261102T010000Z"]);
  assert.deepEqual(early.reasons["20261106T010000Z"], [
    { rule: "newest", bucket: "by stamp" },
    { rule: "pre-restore", bucket: "taken before restoring 20261101T010000Z, kept until 2026-11-13" },
  ]);
  assert.deepEqual(early.reasons["20261103T010000Z"], [{ rule: "last-published", bucket: "sequence 4" }]);
  assert.deepEqual(early.reasons["20261104T010000Z"], [
    { rule: "pre-restore", bucket: "taken before restoring 20261101T010000Z, kept until 2026-11-11" },
  ]);
  assert.deepEqual(at("2026-11-11T01:00:00Z").keep, ["20261106T010000Z", "20261103T010000Z"], "7 days, not more");
  const forEver = factGuards(facts, { now: new Date("2026-11-11T00:00:00Z"), preRestoreDays: 100_000_000 });
  assert.deepEqual(forEver["20261104T010000Z"], [
    { rule: "pre-restore", bucket: "taken before restoring 20261101T010000Z, kept for ever" },
  ], "a window past the last date a Date holds");

  const valid = withGuards(early, newestValidGuard("20261102T010000Z"));
  assert.deepEqual(valid.remove, ["20261105T010000Z"]);
  assert.deepEqual(valid.reasons["20261102T010000Z"], [{ rule: "newest-valid", bucket: "passed a quick validation" }]);
});

Deno.test("a stamp in the future is kept and takes no rule's place: the days of a clock that was ahead push out none", () => {
  const real = ["20261101T010000Z", "20261102T010000Z", "20261103T010000Z", "20261104T010000Z"];
  const ahead = ["20990101T010000Z", "20990102T010000Z", "20261104T011000Z"]; // the last: 10 minutes after now
  const now = new Date("2026-11-04T01:00:00Z");
  const policy = { daily: 2, weekly: 0, monthly: 0 };
  assert.deepEqual(applyRetention([...real, ...ahead], policy).keep, ["20990102T010000Z", "20990101T010000Z"]);
  const decided = retainByPolicy([...real, ...ahead], policy, now);
  assert.deepEqual(decided.keep, [...ahead.slice(0, 2).reverse(), "20261104T011000Z", ...real.slice(2).reverse()]);
  assert.deepEqual(decided.remove, ["20261102T010000Z", "20261101T010000Z"]);
  assert.deepEqual(decided.reasons["20990101T010000Z"], [
    { rule: "future", bucket: "stamped after this host's clock (2026-11-04T01:00:00.000Z)" },
  ]);
  assert.deepEqual(decided.reasons["20261104T010000Z"], [{ rule: "daily", bucket: "2026-11-04" }]);
  const within = retainByPolicy(["20261104T010400Z", ...real], policy, now); // within the clocks' allowance
  assert.deepEqual(within.keep, ["20261104T010400Z", "20261103T010000Z"]);
  const later = retainByPolicy([...real, ...ahead], policy, new Date("2099-01-03T00:00:00Z")); // the clock caught up
  assert.deepEqual(later.keep, ["20990102T010000Z", "20990101T010000Z"]);
});

Deno.test("the newest guard keeps the newest stamp not in the future: one in the future is kept by its own guard", () => {
  const facts = ["20261104T010000Z", "20990101T010000Z"].map((stamp) => ({
    stamp,
    sequence: null,
    preRestore: false,
    restoringStamp: null,
  }));
  const now = new Date("2026-11-05T00:00:00Z");
  const policy = { daily: 0, weekly: 4, monthly: 0 }; // neither is a Sunday: the policy keeps nothing
  const decided = withGuards(
    retainByPolicy(facts.map((fact) => fact.stamp), policy, now),
    factGuards(facts, { now, preRestoreDays: 7 }),
  );
  assert.deepEqual(decided.keep, ["20990101T010000Z", "20261104T010000Z"]);
  assert.deepEqual(decided.reasons["20261104T010000Z"], [{ rule: "newest", bucket: "by stamp" }]);
});
