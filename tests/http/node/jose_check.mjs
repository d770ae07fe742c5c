// npm jose (createRemoteJWKSet + jwtVerify) verifies our access tokens from the JWKS URI that
// our RFC 8414 metadata names, before and after a key rotation (to another algorithm).
// Tokens are issued and the key rotated with tokenctl over gRPC. Driven by run_interop.sh:
//   TA_HTTP (http://host:port), TA_TOKENCTL (command line prefix, JSON array).
import { execFileSync } from 'node:child_process';
import { createRemoteJWKSet, jwtVerify, errors } from 'jose';

const base = process.env.TA_HTTP;
const tokenctl = JSON.parse(process.env.TA_TOKENCTL);
let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) { passed++; } else { failed++; console.error(`FAIL: ${what}`); }
}
function ctl(...args) {
  return JSON.parse(execFileSync(tokenctl[0], [...tokenctl.slice(1), '--json', ...args]).toString());
}
const issue = (subject) => ctl('issue', subject, '--client_id=web', '--scope=read').accessToken;

const metadata = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
const JWKS = createRemoteJWKSet(new URL(metadata.jwks_uri), {
  // jose refetches on an unknown kid at most once per cooldown (default 30 s). Our keys sign as
  // soon as they are rotated in, so a verifier must be allowed to refetch at once (README).
  cooldownDuration: 0,
});
const options = {
  issuer: metadata.issuer,
  audience: 'api',
  typ: 'at+jwt',
  algorithms: metadata.id_token_signing_alg_values_supported,
};

const before = issue('alice');
const first = await jwtVerify(before, JWKS, options);
check(first.payload.sub === 'alice' && first.payload.iss === metadata.issuer, 'first token verifies');
check(first.protectedHeader.alg === 'ES256', 'first token is ES256');

const rotated = ctl('rotate-key', '--alg=EdDSA');
const after = issue('bob');
const second = await jwtVerify(after, JWKS, options);
check(second.payload.sub === 'bob', 'token of the rotated-in key verifies (JWKS refetched)');
check(second.protectedHeader.kid === rotated.kid && second.protectedHeader.alg === 'EdDSA',
      'second token is signed by the new EdDSA key');
check((await jwtVerify(before, JWKS, options)).payload.sub === 'alice',
      'token of the rotated-out key still verifies');

const [h, p, s] = after.split('.');
const tampered = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
try {
  await jwtVerify(tampered, JWKS, options);
  check(false, 'tampered signature is refused');
} catch (e) {
  check(e instanceof errors.JWSSignatureVerificationFailed, `tampered signature is refused (${e.code})`);
}
try {
  await jwtVerify(before, JWKS, { ...options, audience: 'other' });
  check(false, 'wrong audience is refused');
} catch (e) {
  check(e instanceof errors.JWTClaimValidationFailed, 'wrong audience is refused');
}

console.log(`jose: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
