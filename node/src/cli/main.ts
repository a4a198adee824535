// The `cairn` command line. Subcommands arrive with the node, API and simulator work.
const [command = 'help'] = process.argv.slice(2);

switch (command) {
  case 'help':
  case '--help':
  case '-h':
    console.log('usage: cairn <command>\n\ncommands are being built; see README.md');
    break;
  default:
    console.error(`cairn: '${command}' is not available yet in this build`);
    process.exitCode = 2;
}
