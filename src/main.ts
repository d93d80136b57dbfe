#!/usr/bin/env node
/**
 * Entry point: builds the command line and hands off. Each command lives in src/cli/.
 */
import { Command } from "@commander-js/extra-typings";
import { registerConfigCommands } from "./cli/config-commands.js";
import { registerControlCommands } from "./cli/control-commands.js";
import { registerDemoCommand } from "./cli/demo-command.js";
import { registerFirewallCommand } from "./cli/firewall.js";
import { registerRunCommand } from "./cli/run-command.js";
import { registerTestCommand } from "./cli/test-command.js";
import { EXIT, isSipwardenError } from "./core/errors.js";

const program = new Command()
  .name("sipwarden")
  .description("Real-time intrusion prevention for SIP/VoIP servers (Asterisk, Kamailio, FreeSWITCH)")
  .version("0.1.0")
  .showHelpAfterError()
  // Bad usage exits 64 (EX_USAGE), like the rest of our errors, instead of commander's 1.
  .exitOverride((err) => {
    process.exit(err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : EXIT.USAGE);
  });

registerRunCommand(program);
registerTestCommand(program);
registerControlCommands(program);
registerConfigCommands(program);
registerDemoCommand(program);
registerFirewallCommand(program);

async function main(): Promise<void> {
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  if (isSipwardenError(err)) {
    process.stderr.write(`sipwarden: ${err.describe()}\n`);
    process.exitCode =
      err.code === "USAGE"
        ? EXIT.USAGE
        : err.code.startsWith("CONFIG") || err.code === "RULE_INVALID" || err.code === "PATTERN_INVALID"
          ? EXIT.CONFIG
          : EXIT.FAILURE;
  } else {
    process.stderr.write(`sipwarden: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = EXIT.SOFTWARE;
  }
});
