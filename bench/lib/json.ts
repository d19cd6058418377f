/** Reading figures out of a benchmark's JSON results by path. */
export type Json = Record<string, unknown>;

export const get = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((x, k) => (x !== null && typeof x === 'object' ? (x as Json)[k] : undefined), o);

/** The number at `path`, or NaN. */
export const num = (o: unknown, ...path: string[]): number => {
  const v = get(o, ...path);
  return typeof v === 'number' ? v : Number.NaN;
};
