/**
 * Duplicate identity (docs/protocol.md, "Observe lifecycle" 5): registrations for one device from two
 * endpoints alternating (A, B, A) within one keepalive interval mean two devices share an identity.
 */
export class DuplicateIdentityWatch {
  private readonly recent = new Map<string, Array<{ readonly endpoint: string; readonly at: number }>>();

  constructor(private readonly windowMs: number) {}

  /** A registration of `device` from `endpoint`; the two endpoints when they now alternate, else null. */
  registered(device: string, endpoint: string, now = Date.now()): [string, string] | null {
    const recent = (this.recent.get(device) ?? []).filter((e) => now - e.at < this.windowMs);
    recent.push({ endpoint, at: now });
    const [a, b, c] = recent.slice(-3);
    if (a && b && c && a.endpoint === c.endpoint && a.endpoint !== b.endpoint) {
      this.recent.set(device, []);
      return [a.endpoint, b.endpoint];
    }
    this.recent.set(device, recent.slice(-3));
    return null;
  }

  /** The device was removed. */
  forget(device: string): void {
    this.recent.delete(device);
  }
}
