/**
 * The kernel's tables that name files by device and inode: `/proc/locks`, `/proc/<pid>/maps` and `mountinfo`, parsed
 * from lines taken from real SQLite processes (Python's `sqlite3` in WAL mode), and from a live one.
 */
import assert from "node:assert/strict";
import { fileKey, parseFstabPoints, parseLocks, parseMaps, parseMountDevices } from "../../src/sys/proc_tables.ts";
import { tempDir } from "../_helpers.ts";

/**
 * `/proc/locks` while a Python `sqlite3` connection (pid 14493) held `BEGIN IMMEDIATE` on a WAL database (inode
 * 2147200 on device fe:00) with its `-shm` (inode 2147203), then an `flock`, an open-file-description lock, a
 * `lockf` holder and a process waiting behind it.
 */
const LOCKS = `19: POSIX  ADVISORY  WRITE 14493 fe:00:2147203 120 120
20: POSIX  ADVISORY  READ 14493 fe:00:2147203 124 124
21: POSIX  ADVISORY  READ 14493 fe:00:2147203 128 128
22: POSIX  ADVISORY  READ 14493 fe:00:2147200 1073741826 1073742335
7: FLOCK  ADVISORY  WRITE 14861 fe:00:2147203 0 EOF
8: OFDLCK ADVISORY  WRITE -1 fe:00:2147202 0 EOF
1: POSIX  ADVISORY  WRITE 15287 fe:00:2147703 0 EOF
1: -> POSIX  ADVISORY  READ 15343 fe:00:2147703 0 EOF
3: POSIX  ADVISORY  READ 77 <none>:0 0 EOF
`;

Deno.test("parseLocks reads SQLite's locks on the database and -shm, other kinds, unnamed holders and waiters", () => {
  const shm = fileKey(0xfe, 0, "2147203");
  assert.equal(shm, "254:0:2147203");
  assert.deepEqual(parseLocks(LOCKS), [
    { pid: 14493, file: shm, kind: "POSIX", waiting: false },
    { pid: 14493, file: shm, kind: "POSIX", waiting: false },
    { pid: 14493, file: shm, kind: "POSIX", waiting: false },
    { pid: 14493, file: "254:0:2147200", kind: "POSIX", waiting: false },
    { pid: 14861, file: shm, kind: "FLOCK", waiting: false },
    { pid: null, file: "254:0:2147202", kind: "OFDLCK", waiting: false },
    { pid: 15287, file: "254:0:2147703", kind: "POSIX", waiting: false },
    { pid: 15343, file: "254:0:2147703", kind: "POSIX", waiting: true },
  ]);
});

Deno.test("parseMaps reads the -shm a SQLite connection maps, and skips anonymous maps", () => {
  const maps = `55d0c9a6b000-55d0c9a6c000 r--p 00000000 fe:00 16040120                   /usr/bin/python3.11
7f82962c7000-7f82962cf000 rw-s 00000000 fe:00 2146371                    /tmp/lk/a.db-shm
7f8296200000-7f8296300000 rw-p 00000000 00:00 0
7ffd5e9f1000-7ffd5ea12000 rw-p 00000000 00:00 0                          [stack]
`;
  assert.deepEqual([...parseMaps(maps)], ["254:0:16040120", "254:0:2146371"]);
});

Deno.test("parseMountDevices reads each mount's device in decimal", () => {
  const mountinfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
`;
  assert.deepEqual([...parseMountDevices(mountinfo)], [[22, [0, 21]], [27, [254, 0]]]);
});

Deno.test("parseFstabPoints reads where disks are meant to be mounted: not /, swap, comments or other forms", () => {
  const fstab = `# <file system> <mount point> <type> <options> <dump> <pass>
UUID=1234 / ext4 errors=remount-ro 0 1
UUID=5678 none swap sw 0 0
/dev/sdb1   /mnt/offsite\\040disk   ext4 defaults,nofail 0 2
nas:/export /mnt/nas nfs defaults 0 0
broken-line
`;
  assert.deepEqual(parseFstabPoints(fstab), ["/mnt/offsite disk", "/mnt/nas"]);
});

Deno.test("a live SQLite connection's locks name its pid, its database and its -shm", async () => {
  using dir = tempDir();
  const script = `
import json, os, sqlite3, sys
db = os.path.join(sys.argv[1], "live.db")
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("CREATE TABLE t (x)")
connection.execute("BEGIN")
connection.execute("SELECT * FROM t").fetchall()
key = lambda info: "%d:%d:%d" % (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
locks = open("/proc/locks").read()
print(json.dumps({"pid": os.getpid(), "locks": locks, "db": key(os.stat(db)), "shm": key(os.stat(db + "-shm"))}))
`;
  const output = await new Deno.Command("python3", { args: ["-c", script, dir.path], stdout: "piped" }).output();
  assert.ok(output.success);
  const live = JSON.parse(new TextDecoder().decode(output.stdout));
  const mine = parseLocks(live.locks).filter((lock) => lock.pid === live.pid);
  const files = new Set(mine.map((lock) => lock.file));
  assert.ok(files.has(live.db), `no lock on the database ${live.db}: ${live.locks}`);
  assert.ok(files.has(live.shm), `no lock on -shm ${live.shm}: ${live.locks}`);
});
