// OAuth 2.1 for a browser app (a public client), with no library and no build step.
//
// - Authorization code + PKCE (S256): the verifier, state and nonce are made with WebCrypto and
//   kept in sessionStorage only for the redirect round-trip, then deleted.
// - Tokens live in this module's memory only (never localStorage or sessionStorage), so a script
//   that reads storage finds none; a reload means signing in again (quick: the tokensmith
//   session is still there).
// - Silent refresh: before the access token expires, the refresh token is exchanged for a new
//   pair (tokensmith rotates refresh tokens and revokes the family when an old one is replayed).
// - The ID token comes straight from the token endpoint, so its signature is not re-checked here
//   (OpenID Connect Core 3.1.3.7 (6)); issuer, audience, nonce and expiry are.

const PENDING = "clouddocs.pending-login";
const SIGNED_OUT = "clouddocs.signed-out";

let config = null;
let tokens = null; // { accessToken, refreshToken, idToken, expiresAt, claims, renewals }
let timer = null;
let refreshing = null;
const listeners = new Set();

export class AuthError extends Error {
  constructor(message, { cancelled = false } = {}) {
    super(message);
    this.cancelled = cancelled;
  }
}

export function configure(value) {
  config = value;
}

export function onChange(listener) {
  listeners.add(listener);
}

function notify(reason) {
  for (const listener of listeners) listener(reason);
}

export function session() {
  if (tokens === null) return null;
  return { claims: tokens.claims, expiresAt: tokens.expiresAt, renewals: tokens.renewals };
}

function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function s256(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

export async function login() {
  const pending = { verifier: randomString(48), state: randomString(24), nonce: randomString(24) };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

// Finish a login when the page was opened by the authorization server's redirect.
// Returns "signed-in", "signed-out" (back from logout) or "none".
export async function handleRedirect() {
  const params = new URLSearchParams(location.search);
  if (sessionStorage.getItem(SIGNED_OUT) !== null) {
    sessionStorage.removeItem(SIGNED_OUT);
    history.replaceState(null, "", location.pathname);
    return "signed-out";
  }
  if (!params.has("code") && !params.has("error")) return "none";
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname); // the code leaves the address bar
  if (pending === null || params.get("state") !== pending.state) {
    throw new AuthError("This sign-in response does not belong to this browser tab. Please sign in again.");
  }
  if (params.has("iss") && params.get("iss") !== config.issuer) {
    throw new AuthError("The sign-in response came from an unexpected server. Please sign in again.");
  }
  if (params.has("error")) {
    const cancelled = params.get("error") === "access_denied";
    throw new AuthError(
      cancelled
        ? "You cancelled the sign-in. Nothing was changed; you can sign in again at any time."
        : "tokensmith could not sign you in. Please try again.",
      { cancelled },
    );
  }
  const body = await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: config.redirect_uri,
    code_verifier: pending.verifier,
    client_id: config.client_id,
  });
  accept(body, checkIdToken(body.id_token, pending.nonce), 0);
  return "signed-in";
}

async function tokenRequest(form) {
  let response;
  try {
    response = await fetch(config.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  } catch {
    throw new AuthError("tokensmith cannot be reached. Check that the demo is running.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new AuthError(`tokensmith refused: ${body.error || response.status}`);
  return body;
}

function checkIdToken(idToken, nonce) {
  if (typeof idToken !== "string") throw new AuthError("No ID token was returned.");
  const payload = idToken.split(".")[1] || "";
  const binary = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const problems = [
    claims.iss !== config.issuer,
    !audience.includes(config.client_id),
    claims.nonce !== nonce,
    typeof claims.exp !== "number" || claims.exp * 1000 < Date.now() - 60_000,
  ];
  if (problems.some(Boolean)) throw new AuthError("The ID token failed its checks. Please sign in again.");
  return claims;
}

function accept(body, claims, renewals) {
  tokens = {
    accessToken: body.access_token,
    refreshToken: body.refresh_token || tokens?.refreshToken || null,
    idToken: body.id_token || tokens?.idToken || null,
    expiresAt: Date.now() + body.expires_in * 1000,
    claims,
    renewals,
  };
  schedule(body.expires_in);
  notify(renewals === 0 ? "signed-in" : "refreshed");
}

function schedule(lifetime) {
  clearTimeout(timer);
  if (!tokens.refreshToken) return;
  // Renew ahead of expiry: a minute before, or half-way for short-lived tokens.
  const seconds = Math.max(lifetime / 2, lifetime - 60);
  timer = setTimeout(() => refresh().catch(() => {}), seconds * 1000);
}

// One refresh at a time: a rotated refresh token is single-use.
export function refresh() {
  if (refreshing === null) {
    refreshing = doRefresh().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function doRefresh() {
  if (tokens === null || !tokens.refreshToken) throw new AuthError("Please sign in again.");
  const current = tokens;
  try {
    const body = await tokenRequest({
      grant_type: "refresh_token",
      refresh_token: current.refreshToken,
      client_id: config.client_id,
    });
    accept(body, current.claims, current.renewals + 1);
  } catch (error) {
    clearTimeout(timer);
    tokens = null;
    notify("expired");
    throw error;
  }
}

// fetch() with the access token; after a 401 (expired or revoked token) refresh once and retry.
export async function authorizedFetch(url, init = {}) {
  if (tokens === null) throw new AuthError("Please sign in.");
  if (tokens.expiresAt <= Date.now() + 5_000) await refresh();
  const send = () =>
    fetch(url, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${tokens.accessToken}` } });
  let response = await send();
  if (response.status === 401) {
    await refresh();
    response = await send();
  }
  return response;
}

export async function userinfo() {
  const response = await authorizedFetch(config.userinfo_endpoint);
  return response.ok ? response.json() : {};
}

// Revoke the refresh token (and so its access tokens), forget everything, then end the
// tokensmith session (RP-initiated logout), which sends the browser back here.
export async function logout() {
  const current = tokens;
  tokens = null;
  clearTimeout(timer);
  if (current?.refreshToken) {
    await fetch(config.revocation_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token: current.refreshToken,
        token_type_hint: "refresh_token",
        client_id: config.client_id,
      }),
    }).catch(() => {});
  }
  sessionStorage.setItem(SIGNED_OUT, "1");
  const url = new URL(config.end_session_endpoint);
  const params = { post_logout_redirect_uri: config.post_logout_redirect_uri, client_id: config.client_id };
  if (current?.idToken) params.id_token_hint = current.idToken;
  url.search = new URLSearchParams(params).toString();
  location.assign(url.toString());
}
