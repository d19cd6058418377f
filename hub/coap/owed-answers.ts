/**
 * Answers the endpoint still owes: a request whose answer waits for something asynchronous (an ack until
 * it is durable, an enrollment until its key is) is counted here until it is answered. Closing waits for
 * the count to reach zero before the socket goes, so a device whose ack was recorded hears 2.04 rather
 * than retransmitting to a hub that already has it, and no answer is ever sent on a closed socket.
 */
export class OwedAnswers {
  private owed = 0;
  private waiters: Array<() => void> = [];

  /** How many answers are still owed. */
  get count(): number {
    return this.owed;
  }

  /** Counts one answer as owed; the returned function marks it given (calling it again does nothing). */
  begin(): () => void {
    this.owed++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.owed--;
      if (this.owed === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  /** Resolves once nothing is owed (at once when nothing is). */
  settled(): Promise<void> {
    if (this.owed === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
