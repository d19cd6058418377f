/** Exit codes of the `henge` command; scripts may rely on them. */
export const ExitCode = {
  Ok: 0,
  /** Anything unexpected. */
  Failure: 1,
  /** Bad command line (unknown option, missing argument). */
  Usage: 2,
  /** The device, group, schema or token does not exist. */
  NotFound: 3,
  /** The hub refused the input: validation, schema violation, bad id or selector. */
  Invalid: 4,
  /** No token, or the token is invalid or revoked. */
  Unauthorized: 5,
  /** The hub is unreachable, or its store refuses writes. */
  Unavailable: 6,
  /** Already exists, or a schema version conflicts with devices. */
  Conflict: 7,
  /** `henge hub --verify` found views that disagree with the log. */
  VerifyMismatch: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_HELP = `Exit codes:
  0 ok   1 unexpected failure   2 usage   3 not found   4 invalid input
  5 unauthorized   6 hub unreachable or store unavailable   7 conflict   8 verify found differences`;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly body?: unknown,
  ) {
    super(message);
  }
}
