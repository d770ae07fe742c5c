// client/node/local_verifier.js as a line-oriented probe for
// tests/replicas/verifier_consumers_test.cc (copied next to node_modules and local_verifier.js
// by consumers_test.sh): follows HOST:PORT's WatchRevocations, then answers each token read
// from stdin with one line, "active" or "inactive REASON", as client/python/local_verifier.py
// does from the command line.
//   node verifier_probe.js HOST:PORT API_KEY_FILE ISSUER AUDIENCE
'use strict';

const fs = require('fs');
const readline = require('readline');
const { LocalVerifier } = require('./local_verifier');

async function main([address, keyFile, issuer, audience]) {
  const apiKey = fs.readFileSync(keyFile, 'ascii').trim();
  const verifier = new LocalVerifier({ address, apiKey, issuer, audience });
  await verifier.start();
  // One answer per line, in order: the lines are handled one after the other.
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    const { active, reason } = await verifier.verify(line.trim());
    process.stdout.write(active ? 'active\n' : `inactive ${reason}\n`);
  }
  verifier.stop();
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
