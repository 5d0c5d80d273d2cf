// The command line both Node scenarios share (scenario.js, connect.js): --target,
// --token-file, --name and --gzip, plus each client's own options; the required ones missing
// end the process with status 2, naming the client.
'use strict';

const { parseArgs } = require('util');

function scenarioArgs(client, defaultName, options, required) {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'token-file': { type: 'string' },
      name: { type: 'string', default: defaultName },
      gzip: { type: 'boolean', default: false },
      ...options,
    },
  });
  for (const option of ['target', 'token-file', ...required]) {
    if (!values[option]) {
      console.error(`${client}: --${option} is required`);
      process.exit(2);
    }
  }
  return values;
}

module.exports = { scenarioArgs };
