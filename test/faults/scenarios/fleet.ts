/**
 * A data folder seeded in this process for the fleet scenarios (lossy, storm): `ids` devices labelled
 * fleet=<group> and one group over them with `values`. Thousands of adds through the API of a hub
 * process would take longer than the scenario; the hub process then starts on this folder.
 */
import { startHub } from '../../../hub/hub.ts';
import { addDevice, defineGroup } from '../../../hub/domain/index.ts';
import type { ConfigValue } from '../../../protocol/snapshot.ts';

/** Seeds `dataDir` (fresh) and returns the admin token its first start made. */
export async function seedFleet(dataDir: string, ids: readonly string[], group: string, values: Record<string, ConfigValue>): Promise<string> {
  const hub = await startHub({ data: dataDir, host: '127.0.0.1', port: 0 });
  try {
    const ctx = { actor: 'faults', reason: 'seed' };
    for (let i = 0; i < ids.length; i += 500) await Promise.all(ids.slice(i, i + 500).map((d) => addDevice(hub.core, ctx, { id: d, labels: { fleet: group } })));
    await defineGroup(hub.core, ctx, group, { selector: `fleet=${group}`, values });
    return hub.firstToken ?? '';
  } finally {
    await hub.close();
  }
}
