// DPoP proofs made by npm `dpop` (panva) and `oauth4webapi` (panva's OAuth client, the way
// a browser or mobile app would send them), checked by our verifier through dpop_tool.
// Usage: node dpop_check.mjs /path/to/dpop_tool. Exits non-zero on any mismatch.
import { execFileSync } from 'node:child_process';
import * as dpop from 'dpop';
import * as oauth from 'oauth4webapi';

const tool = process.argv[2];
const URL_ = 'https://as.example.com/oauth2/token';
const failures = [];

function check(proof, method, url, ...extra) {
  try {
    const out = execFileSync(tool, ['--method', method, '--url', url, ...extra],
                             { input: proof, stdio: ['pipe', 'pipe', 'pipe'] });
    const [jkt, htu] = out.toString().trim().split(' ');
    return { status: 'ok', jkt, htu };
  } catch (e) {
    return { status: e.stderr.toString().split(':')[0] };
  }
}

function expect(name, got, want) {
  if (got !== want) failures.push(`${name}: got ${got}, want ${want}`);
}

// npm dpop: every algorithm it offers that we accept.
for (const alg of ['ES256', 'Ed25519', 'RS256', 'PS256']) {
  const kp = await dpop.generateKeyPair(alg);
  const thumbprint = await dpop.calculateThumbprint(kp.publicKey);
  const r = check(await dpop.generateProof(kp, URL_, 'POST'), 'POST', URL_);
  expect(`dpop ${alg}`, r.status, 'ok');
  expect(`dpop ${alg} jkt`, r.jkt, thumbprint);
  expect(`dpop ${alg} htm`, check(await dpop.generateProof(kp, URL_, 'POST'), 'PUT', URL_).status,
         'dpop_htm_mismatch');
}
const kp = await dpop.generateKeyPair('ES256');
const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln';
const withAth = await dpop.generateProof(kp, 'https://api.example.com/orders', 'GET', undefined,
                                         token);
expect('dpop ath', check(withAth, 'GET', 'https://api.example.com/orders',
                         '--access_token', token).status, 'ok');
expect('dpop ath other token', check(withAth, 'GET', 'https://api.example.com/orders',
                                     '--access_token', token + 'x').status, 'dpop_ath_mismatch');
const withNonce = await dpop.generateProof(kp, URL_, 'POST', 'n-1');
expect('dpop nonce', check(withNonce, 'POST', URL_, '--nonce', 'n-1').status, 'ok');
expect('dpop stale nonce', check(withNonce, 'POST', URL_, '--nonce', 'n-2').status,
       'dpop_nonce_mismatch');
expect('dpop other url', check(await dpop.generateProof(kp, 'https://evil.example/oauth2/token',
                                                        'POST'), 'POST', URL_).status,
       'dpop_htu_mismatch');

// oauth4webapi: the proof it attaches to a refresh at a token endpoint and to a resource
// request, captured by a fetch that sends nothing.
const keyPair = await oauth.generateKeyPair('ES256');
const client = { client_id: 'spa' };
const handle = oauth.DPoP(client, keyPair);
const expectedJkt = await handle.calculateThumbprint();
let captured;
const capture = async (url, options) => {
  captured = { url: url.toString(), proof: new Headers(options.headers).get('dpop') };
  return new Response('{}', { status: 400, headers: { 'content-type': 'application/json' } });
};
const as = { issuer: 'https://as.example.com', token_endpoint: URL_ };
await oauth.refreshTokenGrantRequest(as, client, oauth.None(), 'rt-opaque',
                                     { DPoP: handle, [oauth.customFetch]: capture });
const refresh = check(captured.proof, 'POST', captured.url);
expect('oauth4webapi refresh', refresh.status, 'ok');
expect('oauth4webapi refresh jkt', refresh.jkt, expectedJkt);
await oauth.protectedResourceRequest(token, 'GET', new URL('https://api.example.com/orders?id=7'),
                                     new Headers(), null,
                                     { DPoP: handle, [oauth.customFetch]: capture });
expect('oauth4webapi resource', check(captured.proof, 'GET', 'https://api.example.com/orders',
                                      '--access_token', token).status, 'ok');
expect('oauth4webapi replayed for another method',
       check(captured.proof, 'DELETE', 'https://api.example.com/orders', '--access_token',
             token).status, 'dpop_htm_mismatch');

if (failures.length) {
  console.log(failures.join('\n'));
  process.exit(1);
}
console.log('dpop node interop: all cases as expected');
