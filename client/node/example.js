#!/usr/bin/env node
// token-authority from Node.js: issue -> introspect -> refresh -> reuse -> revoke-family.
//
// Usage: node example.js HOST:PORT [API_KEY_FILE]
//   (npm ci first; the API contract is loaded at run time from ../../proto, or from
//   $TA_PROTO_DIR when this directory was copied elsewhere.)
// Exits 0 when every step behaves as the API contract says, 1 on the first deviation.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TIMEOUT_MS = 10000;
const PROTO_DIR = process.env.TA_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

class Deviation extends Error {}

function expect(condition, what) {
  if (!condition) throw new Deviation(what);
}

// The machine-readable reason: the `ta-reason` trailer (never parse the message).
function reasonOf(error) {
  const values = error.metadata ? error.metadata.get('ta-reason') : [];
  return values.length > 0 ? String(values[0]) : '';
}

function loadApi() {
  const definition = protoLoader.loadSync('tokenauthority/v1/token_authority.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true, // field names as in the proto: access_token, family_id
    longs: String,
    defaults: true, // so that active=false and changed=false are present
  });
  return grpc.loadPackageDefinition(definition).tokenauthority.v1;
}

// Promisified unary call with the deadline and the API key on every call.
function caller(stub, apiKey) {
  return (method, request) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    if (apiKey) metadata.set('authorization', `Bearer ${apiKey}`);
    const deadline = new Date(Date.now() + TIMEOUT_MS);
    stub[method](request, metadata, { deadline }, (error, response) => {
      if (error) reject(error); else resolve(response);
    });
  });
}

async function run(address, apiKey) {
  const api = loadApi();
  const stub = new api.TokenAuthority(address, grpc.credentials.createInsecure());
  const call = caller(stub, apiKey);
  const issue = (subject) => call('IssueTokens', {
    subject, client_id: 'example-node', scope: 'read write',
    session_metadata: { device: 'node-example' },
  });
  const active = async (token) => (await call('Introspect', { token })).active;
  try {
    const first = await issue('alice-node');
    expect(first.access_token && first.refresh_token && first.family_id, 'issue: empty pair');
    console.log('issue: family', first.family_id);

    const info = await call('Introspect', { token: first.access_token });
    expect(info.active, 'introspect: fresh access token is not active');
    expect(info.subject === 'alice-node', `introspect: wrong subject ${info.subject}`);
    expect(info.family_id === first.family_id, 'introspect: wrong family');
    console.log('introspect: active, subject', info.subject);

    const second = await call('RefreshTokens', { refresh_token: first.refresh_token });
    expect(second.family_id === first.family_id, 'refresh: family changed');
    expect(second.refresh_token !== first.refresh_token, 'refresh: token not rotated');
    console.log('refresh: rotated');

    let reuseError = null;
    try {
      await call('RefreshTokens', { refresh_token: first.refresh_token });
    } catch (error) {
      reuseError = error;
    }
    expect(reuseError !== null, 'reuse: a spent refresh token was accepted');
    expect(reuseError.code === grpc.status.UNAUTHENTICATED,
      `reuse: code ${reuseError.code}, want UNAUTHENTICATED`);
    expect(reasonOf(reuseError) === 'refresh_token_reused',
      `reuse: reason "${reasonOf(reuseError)}", want refresh_token_reused`);
    expect(!(await active(second.access_token)), 'reuse: the family\'s access token is still active');
    console.log('reuse: refused (refresh_token_reused), family revoked');

    const again = await call('RevokeFamily', { family_id: first.family_id, reason: 'logout' });
    expect(!again.changed, 'revoke-family: a family revoked by reuse changed again');
    const other = await issue('bob-node');
    const revoked = await call('RevokeFamily', { family_id: other.family_id, reason: 'logout' });
    expect(revoked.changed, 'revoke-family: a live family did not change');
    expect(!(await active(other.access_token)), 'revoke-family: access token still active');
    console.log('revoke-family: revoked', other.family_id);
  } finally {
    stub.close();
  }
}

async function main(argv) {
  if (argv.length < 1 || argv.length > 2) {
    console.error('usage: node example.js HOST:PORT [API_KEY_FILE]');
    return 2;
  }
  const apiKey = argv.length === 2 ? fs.readFileSync(argv[1], 'ascii').trim() : '';
  try {
    await run(argv[0], apiKey);
  } catch (error) {
    if (error instanceof Deviation) {
      console.error('FAIL:', error.message);
    } else {
      console.error(`FAIL: unexpected error ${error.code} ${reasonOf(error)}: ${error.details || error.message}`);
    }
    return 1;
  }
  console.log('ok');
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
