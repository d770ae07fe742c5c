// A DPoP prover for dpop_server_interop.py: one key pair made by npm `dpop` or
// `oauth4webapi`, and one proof per JSON line asked on stdin, answered as one JSON line:
//   {"op":"jkt"}                                              -> {"jkt": "..."}
//   {"op":"proof","htm","htu","access_token"?, "nonce"?}      -> {"proof": "..."}
// oauth4webapi's proofs are the ones it attaches to a real request (a refresh at a token
// endpoint, a protected-resource request), captured by a fetch that sends nothing.
// Usage: node dpop_prover.mjs dpop|oauth4webapi
import * as readline from 'node:readline';
import * as dpop from 'dpop';
import * as oauth from 'oauth4webapi';

const lib = process.argv[2];
let jkt, prove;
if (lib === 'dpop') {
  const kp = await dpop.generateKeyPair('ES256');
  jkt = await dpop.calculateThumbprint(kp.publicKey);
  prove = (r) => dpop.generateProof(kp, r.htu, r.htm, r.nonce ?? undefined,
                                    r.access_token ?? undefined);
} else if (lib === 'oauth4webapi') {
  const keyPair = await oauth.generateKeyPair('ES256');
  const client = { client_id: 'spa' };
  jkt = await oauth.DPoP(client, keyPair).calculateThumbprint();
  prove = async (r) => {
    // A fresh handle per proof: oauth4webapi would otherwise reuse a nonce it cached.
    const handle = oauth.DPoP(client, keyPair);
    let captured;
    const capture = async (url, options) => {
      captured = new Headers(options.headers).get('dpop');
      return new Response('{}', { status: 400, headers: { 'content-type': 'application/json' } });
    };
    const opts = { DPoP: handle, [oauth.customFetch]: capture };
    try {
      if (r.access_token) {
        await oauth.protectedResourceRequest(r.access_token, r.htm, new URL(r.htu),
                                             new Headers(), null, opts);
      } else {
        const as = { issuer: new URL(r.htu).origin, token_endpoint: r.htu };
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), 'rt-opaque', opts);
      }
    } catch (e) { /* the captured request is all we want */ }
    if (!captured) throw new Error('oauth4webapi sent no DPoP header');
    return captured;
  };
} else {
  throw new Error(`unknown library ${lib}`);
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const r = JSON.parse(line);
  const answer = r.op === 'jkt' ? { jkt } : { proof: await prove(r) };
  process.stdout.write(JSON.stringify(answer) + '\n');
}
