// Authorization code + PKCE login as an OpenID Connect relying party (openid-client).
//
// 1. prints {"authorization_url", "state", "nonce"} (S256 challenge, nonce and state made here);
// 2. reads the callback URL the browser was sent to from stdin;
// 3. exchanges the code (openid-client checks state, iss, PKCE, and the id_token: signature via
//    the JWKS, iss, aud, exp, nonce), calls userinfo, optionally refreshes `refreshes` times and
//    then replays the first and the last refresh token, and builds an end-session URL;
//    with `revoke`, introspects and revokes the access token, then revokes the refresh token;
// 4. prints {"tokens", "userinfo", "refreshes", "replayed_first", "replayed_last", "end_session_url",
//    "introspected", "introspected_revoked", "userinfo_revoked", "refresh_revoked"}.
import * as client from 'openid-client'
import { configure, emit, options, readStdin, refusal, run, step, tokenSummary } from './common.mjs'

await run(async () => {
  step('discovery')
  const config = await configure()
  const scope = options.scope
  const openid = scope.split(' ').includes('openid')
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = openid ? client.randomNonce() : undefined
  const params = {
    redirect_uri: options.redirect_uri,
    scope,
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(nonce ? { nonce } : {}),
    ...(options.extra ?? {}),
  }
  emit({ authorization_url: client.buildAuthorizationUrl(config, params).href, state, nonce })

  step('waiting for the callback URL on stdin')
  const callback = new URL(await readStdin())
  step('code exchange')
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: openid,
  })
  const result = { tokens: tokenSummary(tokens) }
  const sub = tokens.claims()?.sub
  step('userinfo')
  if (openid) result.userinfo = await client.fetchUserInfo(config, tokens.access_token, sub)

  if (options.revoke) {
    // RFC 7662 and RFC 7009 through the endpoints discovery advertised.
    step('introspection')
    result.introspected = await client.tokenIntrospection(config, tokens.access_token)
    step('access token revocation')
    await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' })
    result.introspected_revoked = await client.tokenIntrospection(config, tokens.access_token)
    result.userinfo_revoked = await refusal(client.fetchUserInfo(config, tokens.access_token, sub))
    step('refresh token revocation')
    await client.tokenRevocation(config, tokens.refresh_token)
    result.refresh_revoked = await refusal(client.refreshTokenGrant(config, tokens.refresh_token))
  }

  const refreshes = []
  let current = tokens.refresh_token
  for (let i = 0; i < (options.refreshes ?? 0); i++) {
    step(`refresh ${i + 1}`)
    const next = await client.refreshTokenGrant(config, current)
    refreshes.push(tokenSummary(next))
    current = next.refresh_token
  }
  result.refreshes = refreshes
  step('refresh token replay')
  if (refreshes.length > 0) {
    result.replayed_first = await refusal(client.refreshTokenGrant(config, tokens.refresh_token))
    result.replayed_last = await refusal(client.refreshTokenGrant(config, current))
  }
  if (options.post_logout_redirect_uri && tokens.id_token) {
    result.end_session_url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: options.post_logout_redirect_uri,
      state: 'bye',
    }).href
  }
  emit(result)
})
