// node-oidc-provider (npm oidc-provider, by panva) for the benchmark: the client credentials
// grant with resource indicators, in-memory adapter, one resource per access-token flavour.
//   node server.mjs PORT CLIENT_ID CLIENT_SECRET
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
const jwk = (type, options) => generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
const es256 = { ...jwk('ec', { namedCurve: 'P-256' }), alg: 'ES256', use: 'sig', kid: 'es256' };
const eddsa = { ...jwk('ed25519'), alg: 'EdDSA', use: 'sig', kid: 'eddsa' };
const rs256 = { ...jwk('rsa', { modulusLength: 2048 }), alg: 'RS256', use: 'sig', kid: 'rs256' };

const formats = {
  'https://api.bench/es256': { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
  'https://api.bench/eddsa': { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } } },
  'https://api.bench/opaque': { accessTokenFormat: 'opaque' },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'docs:read',
  }],
  jwks: { keys: [rs256, es256, eddsa] },
  scopes: ['openid', 'offline_access', 'docs:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.bench/es256',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const format = formats[resource];
        if (!format) throw new Error('unknown resource');
        return { scope: 'docs:read', audience: resource, accessTokenTTL: 600, ...format };
      },
    },
  },
});
provider.listen(Number(port), '127.0.0.1');
