// Verify token-authority access tokens locally, following the revocation stream.
//
//   const { LocalVerifier } = require('./local_verifier');
//   const verifier = new LocalVerifier({ address: '127.0.0.1:50051', apiKey, issuer:
//     'token-authority', audience: 'api' });
//   await verifier.start();                       // GetJwks + WatchRevocations
//   const { active, reason, claims } = await verifier.verify(token);
//   verifier.stop();
//
// The signature and the claims are checked with jose (npm, pinned in package-lock.json)
// against the JWKS (GetJwks): typ at+jwt, iss, aud, exp/nbf with a leeway. Revocations come
// from TokenAuthority/WatchRevocations (docs/revocation-stream.md, "Served"): a token is
// inactive while its jti (kind JTI) or its session `sid` (kinds FAMILY, SUBJECT) is held. The
// verifier fails closed: when the last bookmark's as_of is older than staleAfterMs (1 s),
// every answer is inactive with reason revocations_stale. The JWKS is refetched on a `keys`
// event and on an unknown kid. The caller needs the role `resource` (or admin). The proto is
// loaded at run time from ../../proto, or from $TA_PROTO_DIR.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const jose = require('jose');

const PROTO_DIR = process.env.TA_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

const KIND_REASON = { JTI: 'token_revoked', FAMILY: 'family_revoked', SUBJECT: 'subject_revoked' };

function loadApi() {
  const definition = protoLoader.loadSync('tokenauthority/v1/token_authority.proto', {
    includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true,
    oneofs: true, // `event` names the field that is set
  });
  return grpc.loadPackageDefinition(definition).tokenauthority.v1;
}

// google.protobuf.Timestamp -> milliseconds since the epoch.
const millis = (ts) => Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);

class LocalVerifier {
  constructor({ address, apiKey, issuer, audience, leewayMs = 30000, staleAfterMs = 1000,
    clock = Date.now, credentials = grpc.credentials.createInsecure() }) {
    const api = loadApi();
    this.stub = new api.TokenAuthority(address, credentials);
    this.apiKey = apiKey;
    this.issuer = issuer;
    this.audience = audience;
    this.leewayMs = leewayMs;
    this.staleAfterMs = staleAfterMs;
    this.clock = clock;
    this.keySet = null; // jose's local JWKS
    this.jwksVersion = null;
    this.lastJwksFetch = 0;
    this.jtis = new Map(); // jti -> { liveUntil, reason }
    this.sids = new Map(); // family id -> { liveUntil, reason }
    this.pending = null; // { jtis, sids } while a snapshot arrives, swapped in at its end
    this.position = null; // { epoch, seq } to resume from
    this.asOf = null; // last bookmark's as_of (ms since the epoch)
    this.call = null;
    this.stopped = false;
    this.backoffMs = 50;
  }

  metadata() {
    const metadata = new grpc.Metadata();
    if (this.apiKey) metadata.set('authorization', `Bearer ${this.apiKey}`);
    return metadata;
  }

  async start() {
    await this.refreshJwks();
    this.follow();
  }

  stop() {
    this.stopped = true;
    if (this.call) this.call.cancel();
    clearTimeout(this.retry);
    this.stub.close();
  }

  // --- the stream ---------------------------------------------------------------------------

  follow() {
    if (this.stopped) return;
    // batches: a snapshot page (or entries of the tail ready together) in one message.
    const request = this.position ? { since: this.position, batches: true } : { batches: true };
    const call = this.stub.WatchRevocations(request, this.metadata());
    this.call = call;
    call.on('data', (event) => { this.backoffMs = 50; this.apply(event); });
    call.on('error', () => {}); // reconnect below; staleness decides what verify answers
    call.on('status', () => { // once per call, after its last message or error
      if (this.stopped || this.call !== call) return;
      this.retry = setTimeout(() => this.follow(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 1000);
    });
  }

  hold(entries) {
    const view = this.pending || this;
    for (const entry of entries) {
      const held = entry.kind === 'JTI' ? view.jtis : view.sids;
      held.set(entry.id, { liveUntil: millis(entry.live_until),
        reason: KIND_REASON[entry.kind] || 'token_revoked' });
      this.position.seq = entry.seq;
    }
  }

  apply(event) {
    switch (event.event) {
      case 'reset': // keep the old view (and its bookmark) until the snapshot is complete
        this.pending = { jtis: new Map(), sids: new Map() };
        this.position = { epoch: event.reset.epoch, seq: '0' };
        break;
      case 'entry':
        this.hold([event.entry]);
        break;
      case 'batch':
        this.hold(event.batch.entries);
        break;
      case 'end_of_snapshot':
        if (this.pending) ({ jtis: this.jtis, sids: this.sids } = this.pending);
        this.pending = null;
        this.position.seq = event.end_of_snapshot.seq;
        break;
      case 'bookmark':
        if (!this.pending) { // a bookmark proves nothing about a half snapshot
          this.asOf = millis(event.bookmark.as_of);
          this.position.seq = event.bookmark.seq;
        }
        this.prune();
        break;
      case 'keys':
        if (event.keys.jwks_version !== this.jwksVersion) {
          this.jwksVersion = event.keys.jwks_version;
          this.refreshJwks().catch(() => {});
        }
        break;
      default:
        break;
    }
  }

  prune() {
    const now = this.clock();
    for (const held of [this.jtis, this.sids]) {
      for (const [id, { liveUntil }] of held) if (liveUntil <= now) held.delete(id);
    }
  }

  // --- keys ---------------------------------------------------------------------------------

  // Fetches the JWKS (GetJwks); keeps the old keys when the call fails.
  refreshJwks() {
    this.lastJwksFetch = this.clock();
    return new Promise((resolve) => {
      this.stub.GetJwks({}, this.metadata(), { deadline: Date.now() + 5000 }, (error, response) => {
        if (!error) this.keySet = jose.createLocalJWKSet(JSON.parse(response.jwks_json));
        resolve(!error);
      });
    });
  }

  // --- the decision -------------------------------------------------------------------------

  // Milliseconds since the last bookmark's as_of (null: no bookmark yet).
  staleness() {
    return this.asOf === null ? null : this.clock() - this.asOf;
  }

  // { active, reason, claims }. The token's own checks come first (a forged or expired token
  // is inactive whatever the stream says), then the revocations, trusted only while the last
  // bookmark is younger than staleAfterMs.
  async verify(token) {
    let claims;
    try {
      claims = await this.checkToken(token);
    } catch (error) {
      if (error instanceof jose.errors.JWKSNoMatchingKey && this.clock() - this.lastJwksFetch >= 1000) {
        await this.refreshJwks(); // a new key not announced yet, at most once a second
        try {
          claims = await this.checkToken(token);
        } catch (again) {
          return inactive(reasonOf(again));
        }
      } else {
        return inactive(reasonOf(error));
      }
    }
    const now = this.clock();
    if (this.asOf === null || now - this.asOf > this.staleAfterMs) {
      return inactive('revocations_stale'); // fail closed
    }
    for (const [held, name] of [[this.jtis, 'jti'], [this.sids, 'sid']]) {
      const hit = held.get(claims[name]);
      if (hit && now < hit.liveUntil) return inactive(hit.reason);
    }
    return { active: true, reason: '', claims };
  }

  async checkToken(token) {
    if (!this.keySet) throw new jose.errors.JWKSNoMatchingKey();
    const { payload } = await jose.jwtVerify(token, this.keySet, {
      issuer: this.issuer, audience: this.audience, typ: 'at+jwt',
      clockTolerance: this.leewayMs / 1000, currentDate: new Date(this.clock()),
      requiredClaims: ['exp', 'jti', 'sub', 'sid'],
    });
    return payload;
  }
}

function inactive(reason) {
  return { active: false, reason, claims: null };
}

function reasonOf(error) {
  const { errors } = jose;
  if (error instanceof errors.JWTExpired) return 'token_expired';
  if (error instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'token_not_yet_valid';
    if (error.claim === 'iss') return 'wrong_issuer';
    if (error.claim === 'aud') return 'wrong_audience';
    if (error.claim === 'typ') return 'not_access_token';
  }
  return 'malformed';
}

module.exports = { LocalVerifier };
