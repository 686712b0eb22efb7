/**
 * A store with one snapshot, a key pair and a radosgw reached through the tests' HTTP proxy: what the S3 fault tests
 * (throttling, stops while publishing) start from.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, storeEnv, tempDir, tempStore } from "./_helpers.ts";
import { type HttpFaultProxy, startHttpProxy } from "./_http_proxy.ts";
import { ageKeyPair, authKeyFileFor } from "./_remote_cli.ts";
import type { RemoteTarget } from "./_targets.ts";

/** The store, its snapshot's stamp, the keys, and the proxy in front of the S3 target. */
export interface ProxiedS3 extends AsyncDisposable {
  target: RemoteTarget;
  proxy: HttpFaultProxy;
  store: ReturnType<typeof tempStore>;
  stamp: string;
  keyFile: string;
  recipient: string;
  authKeyFile: string;
}

/** A store of `dbMiB` (seeded) with a snapshot made by `create --chroma`, and a proxy in front of `target`. */
export async function proxiedS3(target: RemoteTarget, store: Parameters<typeof tempStore>[0]): Promise<ProxiedS3> {
  const made = tempStore(store);
  const keys = tempDir("atocore-keys-");
  const key = ageKeyPair(keys.path);
  const created = await runCli(["create", "--chroma"], { env: storeEnv(made) });
  assert.equal(created.code, 0, created.stderr);
  const proxy = startHttpProxy(target.server!);
  return {
    target,
    proxy,
    store: made,
    stamp: (created.json as { stamp: string }).stamp,
    keyFile: key.keyFile,
    recipient: key.recipient,
    authKeyFile: authKeyFileFor(key),
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      keys[Symbol.dispose]();
      made[Symbol.dispose]();
    },
  };
}

/**
 * A new repository `name` reached through the proxy (made with every request passed, `extra` in its environment): its
 * environment, and the same with the identity.
 */
export async function freshProxiedRepository(f: ProxiedS3, name: string, extra: Record<string, string> = {}) {
  const env = {
    ...storeEnv(f.store),
    ...f.target.server!.through(f.target.fresh(name), f.proxy.port),
    ...extra,
    ATOCORE_BACKUP_AUTH_KEY_FILE: f.authKeyFile,
  };
  f.proxy.setRules([]);
  const init = await runCli(["remote", "init", "--recipient", f.recipient], { env });
  assert.equal(init.code, 0, init.stderr);
  return { env, withKey: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile } };
}
