// Shared by the relying-party scripts: configuration from argv, discovery, JSON-lines output.
//
// Each script takes one JSON argument (issuer, client_id, client_secret, auth, ...), prints one
// JSON object per line on stdout, and on failure prints {"error": {...}} and exits 1. A script
// that waits longer than its time limit exits 3, so a stuck test never hangs.
import * as client from 'openid-client'

const LIMIT_MS = 90_000

export const options = JSON.parse(process.argv[2] ?? '{}')

setTimeout(() => {
  emit({ error: { name: 'Timeout', message: `no result after ${LIMIT_MS} ms` } })
  process.exit(3)
}, LIMIT_MS).unref()

// What the script was doing, reported with any error.
export const progress = { step: 'start' }

export function step(name) {
  progress.step = name
}

export function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

export function errorInfo(err) {
  return {
    name: err?.name,
    message: err?.message,
    code: err?.code,
    error: err?.error,
    error_description: err?.error_description,
    status: err?.status,
    cause: err?.cause instanceof Error ? err.cause.message : err?.cause,
  }
}

// Runs main(); any exception becomes {"error": ...} and exit status 1.
export async function run(main) {
  try {
    await main()
  } catch (err) {
    emit({ error: { step: progress.step, ...errorInfo(err) } })
    process.exitCode = 1
  }
}

function clientAuth(method, secret) {
  switch (method ?? 'client_secret_basic') {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret)
    case 'client_secret_post':
      return client.ClientSecretPost(secret)
    case 'none':
      return client.None()
    default:
      throw new Error(`unknown auth method ${method}`)
  }
}

// Discovery (OpenID Connect Discovery 1.0 at the issuer's well-known path, issuer checked).
// Plain http is allowed only because the test server listens on 127.0.0.1.
export async function configure() {
  const metadata = {}
  if (options.client_secret) metadata.client_secret = options.client_secret
  if (options.id_token_alg) metadata.id_token_signed_response_alg = options.id_token_alg
  return client.discovery(
    new URL(options.issuer),
    options.client_id,
    metadata,
    clientAuth(options.auth, options.client_secret),
    // algorithm 'oidc': /.well-known/openid-configuration; 'oauth2': the RFC 8414 document.
    { execute: [client.allowInsecureRequests], algorithm: options.discovery ?? 'oidc' },
  )
}

// Everything the test writes on stdin (it closes stdin after one line).
export async function readStdin() {
  let text = ''
  for await (const chunk of process.stdin) text += chunk
  return text.trim()
}

// A token endpoint call that is expected to fail: its OAuth error, or null if it succeeded.
export async function refusal(promise) {
  try {
    await promise
    return null
  } catch (err) {
    return errorInfo(err)
  }
}

export function tokenSummary(tokens) {
  return {
    token_type: tokens.token_type,
    scope: tokens.scope ?? null,
    expires_in: tokens.expiresIn() ?? null,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token ?? null,
    id_token: tokens.id_token ?? null,
    claims: tokens.claims() ?? null,
  }
}
