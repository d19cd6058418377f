/** Moved to hub/security/failure-budget.ts (the DTLS endpoint uses it too); kept until server.ts imports it from there. */
export { FailureBudget } from '../security/failure-budget.ts';
