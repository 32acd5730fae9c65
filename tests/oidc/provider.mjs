// A real OpenID Connect provider (npm `oidc-provider`) for ecoupon's sign-in tests.
//
//   node tests/oidc/provider.mjs [port]        (port 0 or absent: any free port)
//
// 1. Listens on 127.0.0.1 and prints `listening <port>`; the issuer is http://127.0.0.1:<port>.
//    With APPLE_KEY_PATH set, first writes a fresh P-256 PKCS#8 PEM key there (the app's
//    Apple `.p8` key; this script keeps its public half).
// 2. Reads one line from stdin: the app's base URL (redirect URIs are `<base>/auth/<name>/callback`).
//    Then configures the clients below and prints `ready`.
//
// Clients (client_id = secret prefix; see CLIENTS):
//   google       RS256 ID tokens, client_secret_basic        (Google-like)
//   line         HS256 ID tokens signed with the client secret, client_secret_post (LINE-like)
//   apple        RS256, response_mode=form_post, client_secret_post where the secret must be an
//                ES256 JWT minted by the app (Apple-like; verified here, see verifyAppleSecret)
//   bad-aud, bad-iss, bad-sig, bad-nonce
//                like google (client_secret_basic), but the ID token in the token response is altered after the fact
//                (wrong audience, wrong issuer, signature by an unknown key, wrong nonce), so the
//                tests can prove the app rejects each.
// PKCE (S256) is required for every client. devInteractions give plain HTML login and consent
// forms, so a test drives the flow over HTTP with no browser: any login name, any password.

import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';
import * as jose from 'jose';

export const SECRETS = {
  google: 'google-like-client-secret',
  line: 'line-like-channel-secret-0123456789abcdef0123456789',
  // Never known to the app: it authenticates with the ES256 JWT, which this script checks
  // and then swaps for this value before oidc-provider sees the request.
  apple: 'apple-static-secret-internal-to-the-test-provider',
  tamper: 'tamper-client-secret',
};
const APPLE_TEAM_ID = process.env.APPLE_TEAM_ID || 'TEAM123456';
const APPLE_KEY_ID = process.env.APPLE_KEY_ID || 'KEY1234567';

const port = Number(process.argv[2] || process.env.PORT || 0);

let appleKey = null;
if (process.env.APPLE_KEY_PATH) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  writeFileSync(process.env.APPLE_KEY_PATH, pem, { mode: 0o600 });
  appleKey = createPublicKey(createPrivateKey(pem));
}

let handler = (req, res) => {
  res.statusCode = 503;
  res.end('not configured yet');
};
const server = createServer((req, res) => handler(req, res));
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

const lines = createInterface({ input: process.stdin });
lines.once('line', async (line) => {
  try {
    handler = (await build(line.trim().replace(/\/$/, ''))).callback();
    process.stdout.write('ready\n');
  } catch (e) {
    console.error(e);
    process.exit(1);
  }
});
// The test's end (stdin closed) is ours too.
lines.on('close', () => process.exit(0));

async function build(appBase) {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const { privateKey: strangerKey } = await jose.generateKeyPair('RS256');

  const client = (name, extra) => ({
    client_id: name,
    redirect_uris: [`${appBase}/auth/${name}/callback`],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    ...extra,
  });
  const tamper = (name) => client(name, {
    client_secret: SECRETS.tamper,
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  });
  const clients = [
    client('google', {
      client_secret: SECRETS.google,
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }),
    client('line', {
      client_secret: SECRETS.line,
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'HS256',
    }),
    client('apple', {
      client_secret: SECRETS.apple,
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
    }),
    tamper('bad-aud'),
    tamper('bad-iss'),
    tamper('bad-sig'),
    tamper('bad-nonce'),
  ];

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingJwk] },
    pkce: { required: () => true },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'HS256'] },
    features: { devInteractions: { enabled: true } },
    // The sub is the login name typed into the dev login form.
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    cookies: { keys: ['test-only-cookie-key'] },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

  // The token endpoint: Apple's client secret check before, ID token tampering after.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/token') {
      return next();
    }
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const params = querystring.parse(Buffer.concat(chunks).toString());
    if (params.client_id === 'apple') {
      const ok = await verifyAppleSecret(params.client_secret, issuer);
      // A failed check leaves a wrong secret, so oidc-provider answers invalid_client itself.
      params.client_secret = ok ? SECRETS.apple : 'rejected-by-the-test-provider';
    }
    ctx.request.body = params;
    await next();
    const mode = String(params.client_id || basicClientId(ctx.get('authorization')) || '');
    if (ctx.status !== 200 || !ctx.body?.id_token || !mode.startsWith('bad-')) {
      return undefined;
    }
    const claims = jose.decodeJwt(ctx.body.id_token);
    let key = privateKey;
    if (mode === 'bad-aud') claims.aud = 'some-other-client';
    if (mode === 'bad-iss') claims.iss = 'https://issuer.invalid';
    if (mode === 'bad-nonce') claims.nonce = 'not-the-nonce-we-were-sent';
    if (mode === 'bad-sig') key = strangerKey;
    ctx.body = {
      ...ctx.body,
      id_token: await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
        .sign(key),
    };
    return undefined;
  });
  return provider;
}

function basicClientId(authorization) {
  const [scheme, value] = (authorization || '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const decoded = Buffer.from(value, 'base64').toString();
  return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
}

// Apple's rules for the client secret: an ES256 JWT from the team's key, kid = key id,
// iss = team id, sub = client id, aud = the issuer, at most 6 months long (we ask for less).
async function verifyAppleSecret(secret, issuer) {
  if (!appleKey || typeof secret !== 'string') {
    return false;
  }
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(secret, appleKey, {
      algorithms: ['ES256'],
      issuer: APPLE_TEAM_ID,
      audience: issuer,
      subject: 'apple',
      requiredClaims: ['iat', 'exp'],
    });
    const shortLived = payload.exp - payload.iat <= 3600;
    const ok = protectedHeader.kid === APPLE_KEY_ID && shortLived;
    if (!ok) console.error('apple client secret: wrong kid or too long', protectedHeader, payload);
    return ok;
  } catch (e) {
    console.error('apple client secret rejected:', e.message);
    return false;
  }
}
