/** `henge`: one command for the hub and its admin verbs. */
import { Command, CommanderError } from 'commander';
import { registerAdmin } from './commands/admin.ts';
import { registerAgent } from './commands/agent.ts';
import { registerDevice } from './commands/device.ts';
import { registerHub } from './commands/hub.ts';
import { registerProvision } from './commands/provision.ts';
import { registerSchema } from './commands/schema.ts';
import { registerSim } from './commands/sim.ts';
import { registerValues } from './commands/values.ts';
import { CliError, EXIT_CODE_HELP, ExitCode } from './exit.ts';

const program = new Command('henge')
  .description('henge: local-first configuration and fleet manager for embedded devices')
  .version('0.1.0')
  .option('--url <url>', 'hub API URL (env HENGE_URL; default: the CLI config file, else http://127.0.0.1:7683)')
  .option('--token <token>', 'admin token (env HENGE_TOKEN; default: the CLI config file that `henge hub` writes)')
  .option('--ca <file>', 'https hub: trust certificates from this PEM CA, or this very certificate (env HENGE_CA)')
  .option('--fingerprint <sha256>', 'https hub: accept exactly the certificate with this SHA-256 fingerprint (env HENGE_FINGERPRINT; default: the one in the CLI config, for its URL)')
  .option('--json', 'print JSON for scripts instead of tables')
  .option('--reason <text>', 'why: recorded with the change in the event log')
  .showHelpAfterError()
  .addHelpText('after', `\n${EXIT_CODE_HELP}`)
  .exitOverride();

registerHub(program);
registerDevice(program);
registerProvision(program);
registerSchema(program);
registerValues(program);
registerAdmin(program);
registerAgent(program);
registerSim(program);

// Every subcommand throws instead of exiting, so that exit codes stay ours.
for (const cmd of program.commands) {
  cmd.exitOverride();
  for (const sub of cmd.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : ExitCode.Usage;
  } else if (err instanceof CliError) {
    process.stderr.write(`henge: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`henge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = ExitCode.Failure;
  }
}
