/** Graceful stop on SIGINT/SIGTERM for the long-running verbs (hub, agent, sim). */

interface StopLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Runs `close` once on the first SIGINT or SIGTERM, then exits 0 (1 if closing failed). */
export function stopOnSignals(log: StopLog, what: string, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, what);
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
