#!/usr/bin/env node
// A public client with its own DPoP key (RFC 9449), as a browser or mobile app would be, and
// the login service that starts its session. README "A DPoP-bound session, end to end".
//
//   node dpop_app.mjs login GRPC_ADDRESS API_KEY_FILE HTTP_BASE STATE_FILE
//       The app makes an ES256 key and a DPoP proof for its login request; the login service
//       (this script, with the API key of a caller with role issuer) passes the proof, with
//       the method and URL it was made for, to gRPC IssueTokens: the session is bound to the
//       key. Saves the key and the tokens in STATE_FILE (mode 0600).
//   node dpop_app.mjs refresh STATE_FILE
//       Refreshes at the token_endpoint of HTTP_BASE's metadata (RFC 8414) with a new proof
//       made by npm dpop; keeps the request, for `replay`.
//   node dpop_app.mjs replay STATE_FILE
//       Sends the last refresh request again, proof and all: what an attacker who captured
//       it would do.
//   node dpop_app.mjs steal STATE_FILE
//       The current refresh token without a proof, then with a proof by another key: what a
//       thief of the token alone can do.
//   node dpop_app.mjs bearer GRPC_ADDRESS API_KEY_FILE STATE_FILE
//       A resource server introspects the bound access token received without a proof.
//
// Each command prints one line per step. Exits 1 when a step does not answer as expected.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dpop from 'dpop';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = dirname(fileURLToPath(import.meta.url));
const PROTO_DIR = process.env.TA_PROTO_DIR || join(here, '..', '..', 'proto');
const LOGIN_URL = 'https://login.example.com/session';  // where the app sent its login
const ALG = { name: 'ECDSA', namedCurve: 'P-256' };

let failed = false;
function report(line, ok) {
  console.log(line);
  if (!ok) failed = true;
}

function grpcCall(address, keyFile, method, request) {
  const definition = protoLoader.loadSync('tokenauthority/v1/token_authority.proto', {
    includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: true,
  });
  const api = grpc.loadPackageDefinition(definition).tokenauthority.v1;
  const stub = new api.TokenAuthority(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${readFileSync(keyFile, 'utf8').trim()}`);
  return new Promise((resolve, reject) => {
    stub[method](request, metadata, { deadline: Date.now() + 10000 }, (error, response) => {
      stub.close();
      if (error) reject(error); else resolve(response);
    });
  });
}

async function loadKeys(state) {
  const { d, key_ops: _ops, ext: _ext, ...pub } = state.key;  // the public half
  return {
    privateKey: await crypto.subtle.importKey('jwk', state.key, ALG, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', pub, ALG, true, ['verify']),
  };
}

const load = (file) => JSON.parse(readFileSync(file, 'utf8'));
const save = (file, state) => writeFileSync(file, JSON.stringify(state, null, 1), { mode: 0o600 });

async function login(address, keyFile, httpBase, file) {
  const keys = await dpop.generateKeyPair('ES256', { extractable: true });
  const proof = await dpop.generateProof(keys, LOGIN_URL, 'POST');
  const pair = await grpcCall(address, keyFile, 'IssueTokens', {
    subject: 'alice', client_id: 'spa', scope: 'read write',
    proof: { dpop_proof: proof, http_method: 'POST', http_url: LOGIN_URL },
  });
  const jkt = await dpop.calculateThumbprint(keys.publicKey);
  save(file, {
    key: await crypto.subtle.exportKey('jwk', keys.privateKey), http: httpBase,
    access_token: pair.access_token, refresh_token: pair.refresh_token,
  });
  report(`login: session bound to key ${jkt.slice(0, 8)}..., token_type ${pair.token_type}`,
         pair.token_type === 'DPoP');
}

async function tokenEndpoint(state) {
  const response = await fetch(`${state.http}/.well-known/oauth-authorization-server`);
  return (await response.json()).token_endpoint;
}

async function post(url, body, proof) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (proof) headers.dpop = proof;
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, json: await response.json() };
}

const described = (r) => r.status === 200
  ? `${r.status} token_type ${r.json.token_type}`
  : `${r.status} ${r.json.error} (${r.json.error_description.split(':')[0]})`;

async function refresh(file) {
  const state = load(file);
  const url = await tokenEndpoint(state);
  const proof = await dpop.generateProof(await loadKeys(state), url, 'POST');
  const body = new URLSearchParams({
    grant_type: 'refresh_token', refresh_token: state.refresh_token, client_id: 'spa',
  }).toString();
  const r = await post(url, body, proof);
  report(`refresh with a proof: ${described(r)}`, r.status === 200 && r.json.token_type === 'DPoP');
  if (r.status === 200) {
    Object.assign(state, { access_token: r.json.access_token, refresh_token: r.json.refresh_token });
  }
  save(file, { ...state, last: { url, body, proof } });
}

async function replay(file) {
  const { last } = load(file);
  const r = await post(last.url, last.body, last.proof);
  report(`the same request again: ${described(r)}`, r.json.error === 'invalid_dpop_proof');
}

async function steal(file) {
  const state = load(file);
  const url = await tokenEndpoint(state);
  const body = new URLSearchParams({
    grant_type: 'refresh_token', refresh_token: state.refresh_token,
  }).toString();
  const bare = await post(url, body);
  report(`refresh token alone: ${described(bare)}`, bare.json.error === 'invalid_dpop_proof');
  const other = await dpop.generateProof(await dpop.generateKeyPair('ES256'), url, 'POST');
  const wrong = await post(url, body, other);
  report(`with another key's proof: ${described(wrong)}`, wrong.json.error === 'invalid_dpop_proof');
}

async function bearer(address, keyFile, file) {
  const state = load(file);
  const out = await grpcCall(address, keyFile, 'Introspect', {
    token: state.access_token, include_reason: true,
  });
  report(`bound access token without a proof: active ${out.active} (${out.inactive_reason})`,
         out.active === false);
}

const [command, ...args] = process.argv.slice(2);
const commands = { login, refresh, replay, steal, bearer };
if (!commands[command]) {
  console.error('usage: dpop_app.mjs login|refresh|replay|steal|bearer ARGS (see the header)');
  process.exit(2);
}
try {
  await commands[command](...args);
} catch (e) {
  report(`${command}: ${e.message}`, false);
}
process.exit(failed ? 1 : 0);
