// client/node/local_verifier.js against a real server (run by run_example.sh node_verifier,
// copied next to node_modules and local_verifier.js).
//   node local_verifier_test.js HOST:PORT API_KEY_FILE SERVER_PID SERVER_BINARY DATA_DIR
// A fresh token is active locally; RevokeToken, RevokeFamily and RevokeSubject each make a
// token inactive within 1 s (the delay is printed); an expired and a forged token are
// inactive; with the server stopped the verifier fails closed (revocations_stale) within ~1 s;
// with the server started again (same address and data dir) it follows the new one: active
// again, and a token revoked before is still inactive (the new server's snapshot).
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { LocalVerifier } = require('./local_verifier');

const BOUND_MS = 1000;
const LEEWAY_MS = 500;
const PROTO_DIR = process.env.TA_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

class Failure extends Error {}
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Polls verify() until it answers `reason`; returns the delay since `start` (taken before the
// call that revoked) in ms.
async function waitFor(verifier, token, reason, what, start, bound = BOUND_MS) {
  for (;;) {
    const result = await verifier.verify(token);
    const delay = performance.now() - start;
    if (!result.active && result.reason === reason) {
      console.log(`${what}: inactive (${reason}) locally after ${delay.toFixed(0)} ms`);
      return delay;
    }
    if (delay > bound) throw new Failure(`${what}: still ${JSON.stringify(result)} after ${bound} ms`);
    await sleep(5);
  }
}

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

// Until `pid` has exited (a zombie of the driver counts: it is not our child).
async function waitExited(pid) {
  const deadline = performance.now() + 10000;
  while (performance.now() < deadline) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'ascii');
    } catch (error) {
      return;
    }
    if (stat.slice(stat.lastIndexOf(')') + 1).trim().split(' ')[0] === 'Z') return;
    await sleep(10);
  }
  throw new Failure('the server did not exit within 10 s of SIGTERM');
}

// Starts the server again; resolves with the child once it printed its listening line.
function restartServer(server, address, dataDir) {
  const child = childProcess.spawn(server,
    [`--listen=${address}`, `--data_dir=${dataDir}`, '--default_audience=api'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('listening on ')) resolve(child);
    });
    child.on('exit', (code) => reject(new Failure(`server restarted: exited ${code} before listening`)));
  });
}

async function run(address, apiKey, serverPid, server, dataDir) {
  const definition = protoLoader.loadSync('tokenauthority/v1/token_authority.proto', {
    includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: true,
  });
  const api = grpc.loadPackageDefinition(definition).tokenauthority.v1;
  const authority = new api.TokenAuthority(address, grpc.credentials.createInsecure());
  const admin = new api.TokenAdmin(address, grpc.credentials.createInsecure());
  const call = (stub, method, request) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${apiKey}`);
    stub[method](request, metadata, { deadline: Date.now() + 10000 },
      (error, response) => { if (error) reject(error); else resolve(response); });
  });
  const issue = (subject) => call(authority, 'IssueTokens',
    { subject, client_id: 'verifier-node', scope: 'read' });

  let skewMs = 0; // the verifier's clock runs this far ahead (to see a token expire)
  const verifier = new LocalVerifier({
    address, apiKey, issuer: 'token-authority', audience: 'api', leewayMs: LEEWAY_MS,
    staleAfterMs: BOUND_MS, clock: () => Date.now() + skewMs,
  });
  try {
    const expiring = await issue('erin-node');
    await verifier.start();
    const began = performance.now();
    while (verifier.staleness() === null) {
      if (performance.now() - began > 5000) throw new Failure('no bookmark within 5 s');
      await sleep(10);
    }
    const active = async (token, what) => {
      const result = await verifier.verify(token);
      if (!result.active) throw new Failure(`${what}: inactive (${result.reason}), want active`);
      return result.claims;
    };
    console.log('fresh token: active locally, sub', (await active(expiring.access_token, 'fresh token')).sub);

    const delays = [];
    const one = await issue('alice-node');
    await active(one.access_token, 'alice');
    let start = performance.now();
    await call(authority, 'RevokeToken', { token: one.access_token });
    delays.push(await waitFor(verifier, one.access_token, 'token_revoked', 'RevokeToken', start));

    const two = await issue('bob-node');
    await active(two.access_token, 'bob');
    start = performance.now();
    await call(authority, 'RevokeFamily', { family_id: two.family_id });
    delays.push(await waitFor(verifier, two.access_token, 'family_revoked', 'RevokeFamily', start));

    const three = await issue('carol-node');
    await active(three.access_token, 'carol');
    start = performance.now();
    await call(admin, 'RevokeSubject', { subject: 'carol-node' });
    delays.push(await waitFor(verifier, three.access_token, 'subject_revoked', 'RevokeSubject', start));
    console.log(`revocation delays: max ${Math.max(...delays).toFixed(0)} ms`);

    // Forged: another subject in the payload under the original signature.
    const fresh = await issue('dave-node');
    const [head, , sig] = fresh.access_token.split('.');
    const body = Buffer.from(JSON.stringify({ ...claimsOf(fresh.access_token), sub: 'mallory' }))
      .toString('base64url');
    const forged = await verifier.verify([head, body, sig].join('.'));
    if (forged.active || forged.reason !== 'bad_signature') {
      throw new Failure(`forged token: ${JSON.stringify(forged)}, want inactive bad_signature`);
    }
    console.log('forged token: inactive (bad_signature)');

    await active(expiring.access_token, 'the token to expire, before its exp');
    // Last of the revocation checks: with its clock moved on, the verifier drops entries dead
    // by then, rightly.
    skewMs = claimsOf(expiring.access_token).exp * 1000 + LEEWAY_MS + 1000 - Date.now();
    await waitFor(verifier, expiring.access_token, 'token_expired',
      'expired token (clock at exp+leeway+1s)', performance.now());
    skewMs = 0;

    start = performance.now();
    process.kill(serverPid, 'SIGTERM');
    const delay = await waitFor(verifier, fresh.access_token, 'revocations_stale', 'server stopped',
      start, BOUND_MS + 500);
    console.log(`server stopped: fail closed after ${delay.toFixed(0)} ms (bound ${BOUND_MS} ms after the last as_of)`);

    await waitExited(serverPid); // it holds the data dir's lock until then
    const restarted = await restartServer(server, address, dataDir);
    try {
      start = performance.now();
      while (!(await verifier.verify(fresh.access_token)).active) {
        if (performance.now() - start > 10000) throw new Failure('server restarted: still inactive after 10 s');
        await sleep(10);
      }
      console.log(`server restarted: active again locally ${(performance.now() - start).toFixed(0)} ms after it listened`);
      const again = await verifier.verify(one.access_token);
      if (again.active || again.reason !== 'token_revoked') {
        throw new Failure(`server restarted: the token revoked before is ${JSON.stringify(again)}`);
      }
      console.log('server restarted: the token revoked before is still inactive (token_revoked)');
    } finally {
      restarted.kill('SIGTERM');
      await new Promise((resolve) => { if (restarted.exitCode !== null) resolve(); else restarted.on('exit', resolve); });
    }
  } finally {
    verifier.stop();
    authority.close();
    admin.close();
  }
}

async function main(argv) {
  if (argv.length !== 5) {
    console.error('usage: node local_verifier_test.js HOST:PORT API_KEY_FILE SERVER_PID SERVER_BINARY DATA_DIR');
    return 2;
  }
  try {
    await run(argv[0], fs.readFileSync(argv[1], 'ascii').trim(), Number(argv[2]), argv[3], argv[4]);
  } catch (error) {
    console.error('FAIL:', error instanceof Failure ? error.message : error);
    return 1;
  }
  console.log('ok');
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
