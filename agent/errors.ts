/**
 * Errors of the device agent. Each has a stable `code` (HENGE_E_*) that logs and tests can rely on; the
 * message is for people.
 */

export abstract class AgentError extends Error {
  abstract readonly code: string;
}

/** A confirmable request got no answer after every retransmission (RFC 7252 MAX_TRANSMIT_WAIT). */
export class CoapTimeoutError extends AgentError {
  readonly code = 'HENGE_E_COAP_TIMEOUT';
}

/** The hub answered a request of ours with an RST. */
export class CoapResetError extends AgentError {
  readonly code = 'HENGE_E_COAP_RESET';
}

/** The request was given up because the client closed or the agent is stopping. */
export class CoapAbortedError extends AgentError {
  readonly code = 'HENGE_E_COAP_ABORTED';
}

/** The hub answered with a code this step cannot use (4.xx, 5.xx, or a 2.xx without what it needs). */
export class CoapResponseError extends AgentError {
  readonly code = 'HENGE_E_COAP_RESPONSE';
  constructor(
    message: string,
    /** The CoAP response code, e.g. `4.04`. */
    readonly responseCode: string,
  ) {
    super(message);
  }
}

/** A block-wise transfer could not be completed consistently (RFC 7959). */
export class BlockTransferError extends AgentError {
  readonly code = 'HENGE_E_BLOCK2';
}

/** `--hub` is not `host[:port]`, or the host does not resolve. */
export class HubAddressError extends AgentError {
  readonly code = 'HENGE_E_HUB_ADDRESS';
}

/** The discovered hub is not the one this device pinned. */
export class HubMismatchError extends AgentError {
  readonly code = 'HENGE_E_HUB_MISMATCH';
}

/** A snapshot cannot be written in the chosen format (e.g. two keys collide as env variable names). */
export class FormatError extends AgentError {
  readonly code = 'HENGE_E_FORMAT';
}

/** A snapshot is inconsistent: its hash is not the hash of its values. */
export class SnapshotIntegrityError extends AgentError {
  readonly code = 'HENGE_E_SNAPSHOT_INTEGRITY';
}

/** Writing the config file failed, or what was read back differs from what was written. */
export class ApplyError extends AgentError {
  readonly code = 'HENGE_E_APPLY';
}

/** The --exec command exited non-zero, was killed, or timed out. */
export class ExecError extends AgentError {
  readonly code = 'HENGE_E_EXEC_FAILED';
  constructor(
    message: string,
    /** Exit code, or null when killed by a signal or a timeout. */
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(message);
  }
}

/** The state folder cannot be read or written, or another agent holds it. */
export class StateError extends AgentError {
  readonly code = 'HENGE_E_STATE';
}

export class StateLockedError extends AgentError {
  readonly code = 'HENGE_E_STATE_LOCKED';
}
