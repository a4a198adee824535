// The `cairn` command line: a dispatcher. Each subcommand lives in its own module, loaded
// only when it runs; to add one, add a line to `commands`.

export interface Command {
  /** One line for `cairn help`. */
  summary: string;
  /** Runs with the arguments after the subcommand's name; resolves with the exit code. */
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).serveCommand,
  dev: async () => (await import('./dev.js')).devCommand,
  status: async () => (await import('./status.js')).statusCommand,
  stream: async () => (await import('./stream.js')).streamCommand,
  produce: async () => (await import('./produce.js')).produceCommand,
  consume: async () => (await import('./consume.js')).consumeCommand,
  node: async () => (await import('./membership.js')).nodeCommand,
  leader: async () => (await import('./leader.js')).leaderCommand,
  // The simulator lives in sim/ (it imports node/, not the other way round): loaded only here.
  sim: async () => (await import('../../../sim/src/cli.js')).simCommand,
};

async function help(): Promise<void> {
  const lines = [
    'usage: cairn <command> [options]   (cairn <command> --help for its options)',
    '',
    'commands:',
  ];
  for (const [name, load] of Object.entries(commands))
    lines.push(`  ${name.padEnd(10)} ${(await load()).summary}`);
  console.log(lines.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  const [name = 'help', ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    await help();
    return 0;
  }
  const load = commands[name];
  if (load === undefined) {
    console.error(`cairn: unknown command '${name}' (see cairn help)`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`cairn: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
