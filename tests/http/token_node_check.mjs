// POST /oauth2/token driven by clients nobody here wrote (issue 26 #5): panva's oauth4webapi
// (the OAuth client a browser app would use: it checks our RFC 6749 §5.1 answers and parses
// our §5.2 errors) and npm dpop (proofs by hand), against the real server.
// Usage: node token_node_check.mjs HTTP_BASE GRPC_ADDRESS API_KEY_FILE PROTO_DIR
// Sessions start over gRPC (@grpc/grpc-js) as a login service would. Exits 1 on any mismatch.
import { readFileSync } from 'node:fs';
import * as dpop from 'dpop';
import * as oauth from 'oauth4webapi';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [httpBase, grpcAddress, keyFile, protoDir] = process.argv.slice(2);
const failures = [];
const expect = (name, got, want) => {
  if (got !== want) failures.push(`${name}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
};

const api = grpc.loadPackageDefinition(protoLoader.loadSync(
  'tokenauthority/v1/token_authority.proto',
  { includeDirs: [protoDir], keepCase: true, longs: String, defaults: true })).tokenauthority.v1;
const stub = new api.TokenAuthority(grpcAddress, grpc.credentials.createInsecure());
const apiKey = readFileSync(keyFile, 'utf8').trim();
const call = (method, request) => new Promise((resolve, reject) => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${apiKey}`);
  stub[method](request, metadata, { deadline: Date.now() + 10000 },
               (e, r) => (e ? reject(e) : resolve(r)));
});

// Discovery: what oauth4webapi needs from our metadata.
const meta = await (await fetch(`${httpBase}/.well-known/oauth-authorization-server`)).json();
expect('token_endpoint', meta.token_endpoint, `${httpBase}/oauth2/token`);
expect('grant_types_supported', JSON.stringify(meta.grant_types_supported), '["refresh_token"]');
expect('auth methods', JSON.stringify(meta.token_endpoint_auth_methods_supported), '["none"]');
expect('dpop algs include ES256', meta.dpop_signing_alg_values_supported.includes('ES256'), true);
const as = { issuer: meta.issuer, token_endpoint: meta.token_endpoint };
const client = { client_id: 'spa' };
const insecure = { [oauth.allowInsecureRequests]: true };  // the test server is plain http

async function refreshWith(refreshToken, options = {}) {
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken,
                                                        { ...insecure, ...options });
  return oauth.processRefreshTokenResponse(as, client, response);
}

async function errorOf(promise) {
  try {
    await promise;
    return 'no error';
  } catch (e) {
    // oauth.ResponseBodyError carries RFC 6749 `error`; with our WWW-Authenticate: DPoP
    // challenge (invalid_dpop_proof, use_dpop_nonce), oauth4webapi throws a
    // WWWAuthenticateChallengeError whose challenge carries it.
    return e.error ?? e.cause?.[0]?.parameters?.error ?? e.message;
  }
}

// A bearer session, refreshed by oauth4webapi.
const bearer = await call('IssueTokens', { subject: 'bob', client_id: 'spa', scope: 'read write' });
const next = await refreshWith(bearer.refresh_token);
expect('bearer token_type', next.token_type, 'bearer');
expect('bearer scope', next.scope, 'read write');
expect('bearer expires_in > 0', next.expires_in > 0, true);
expect('spent token', await errorOf(refreshWith(bearer.refresh_token)), 'invalid_grant');
expect('after reuse, the session is revoked',
       await errorOf(refreshWith(next.refresh_token)), 'invalid_grant');

// A session bound at login to a key oauth4webapi holds (the login service passes on the
// proof the app made for its login request), refreshed by oauth4webapi with DPoP.
const keys = await oauth.generateKeyPair('ES256');
const loginUrl = 'https://login.example.com/session';
const bound = await call('IssueTokens', {
  subject: 'carol', client_id: 'spa', scope: 'read',
  proof: { dpop_proof: await dpop.generateProof(keys, loginUrl, 'POST'), http_method: 'POST',
           http_url: loginUrl },
});
expect('bound at login', bound.token_type, 'DPoP');
const handle = oauth.DPoP(client, keys);
const boundNext = await refreshWith(bound.refresh_token, { DPoP: handle });
expect('bound token_type', boundNext.token_type, 'dpop');
expect('bound refresh without a proof', await errorOf(refreshWith(boundNext.refresh_token)),
       'invalid_dpop_proof');
const otherHandle = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
expect('bound refresh with another key',
       await errorOf(refreshWith(boundNext.refresh_token, { DPoP: otherHandle })),
       'invalid_dpop_proof');

// Proofs by hand (npm dpop): the same request sent twice, and proofs for another request.
async function post(refreshToken, proof) {
  const response = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = await response.json();
  return { status: response.status, error: body.error, body,
           reason: (body.error_description ?? '').split(':')[0],
           challenge: response.headers.get('www-authenticate') ?? '' };
}
const proof = await dpop.generateProof(keys, as.token_endpoint, 'POST');
const first = await post(boundNext.refresh_token, proof);
expect('npm dpop proof', `${first.status} ${first.body.token_type}`, '200 DPoP');
const again = await post(boundNext.refresh_token, proof);
expect('replayed proof', `${again.status} ${again.error} ${again.reason}`,
       '400 invalid_dpop_proof dpop_replayed');
expect('replayed proof challenge', again.challenge.startsWith('DPoP error="invalid_dpop_proof"'),
       true);
const current = first.body.refresh_token ?? '';
const elsewhere = await post(current,
                             await dpop.generateProof(keys, `${httpBase}/oauth2/revoke`, 'POST'));
expect('proof for another URL', `${elsewhere.error} ${elsewhere.reason}`,
       'invalid_dpop_proof dpop_htu_mismatch');
const otherMethod = await post(current, await dpop.generateProof(keys, as.token_endpoint, 'GET'));
expect('proof for another method', `${otherMethod.error} ${otherMethod.reason}`,
       'invalid_dpop_proof dpop_htm_mismatch');
// The refused requests spent nothing: the current token still refreshes, with its key.
expect('after the refusals', await errorOf(refreshWith(current, { DPoP: handle })), 'no error');
stub.close();

if (failures.length) {
  console.log(failures.join('\n'));
  process.exit(1);
}
console.log('token endpoint: oauth4webapi and npm dpop: all checks passed');
