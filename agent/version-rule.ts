/**
 * Which snapshots a device applies (docs/protocol.md, "Version and incarnation rules"): only a greater
 * version from the same incarnation, or any version from another incarnation (the hub's store was rebuilt).
 * Duplicates and reordered deliveries are thereby ignored; arrival order never decides.
 */
import { sameBytes } from './apply.ts';

export interface VersionMark {
  readonly version: number;
  readonly incarnation: Uint8Array;
}

export type ApplyDecision =
  | { readonly apply: true; readonly reason: 'first' | 'newer' | 'new-incarnation' }
  | { readonly apply: false; readonly reason: 'same' | 'older' };

export function decide(applied: VersionMark | undefined, incoming: VersionMark): ApplyDecision {
  if (!applied) return { apply: true, reason: 'first' };
  if (!sameBytes(applied.incarnation, incoming.incarnation)) return { apply: true, reason: 'new-incarnation' };
  if (incoming.version > applied.version) return { apply: true, reason: 'newer' };
  return { apply: false, reason: incoming.version === applied.version ? 'same' : 'older' };
}
