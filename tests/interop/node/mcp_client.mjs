// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an MCP client that nobody
// registered: its OAuth client provider and Streamable HTTP transport, against an MCP server
// protected by tokensmith.
//
// Options: server_url (the MCP endpoint), callback_port (this script listens on
// http://127.0.0.1:PORT/callback), client_metadata_url (the client ID metadata document's URL; the
// SDK uses it when the authorization server advertises client_id_metadata_document_supported,
// otherwise it registers dynamically), client_name, scope.
//
// 1. connects without a token: the SDK meets the 401, reads the protected-resource metadata and
//    the authorization server's metadata, registers (or takes the document URL as client_id),
//    and asks for authorization: prints {"authorization_url"};
// 2. waits for the browser on its callback (state and RFC 9207 iss checked here), redeems the
//    code (PKCE, resource) through the SDK, connects again and calls the tool `whoami`;
// 3. prints {"requests", "client_information", "tokens", "tools", "whoami"}: every HTTP request
//    the SDK made (method, URL, status, and the token request's form fields without secrets).
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'

import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

import { emit, options, run, step } from './common.mjs'

const redirectUri = `http://127.0.0.1:${options.callback_port}/callback`
const requests = []

// The SDK's requests, recorded (the transport and the OAuth helpers use this fetch).
async function recordingFetch(input, init) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  const entry = { method: init?.method ?? 'GET', url }
  if (init?.body instanceof URLSearchParams) {
    const form = Object.fromEntries(init.body)
    for (const secret of ['code', 'code_verifier', 'refresh_token', 'client_secret']) {
      if (secret in form) form[secret] = '(present)'
    }
    entry.form = form
  }
  const response = await fetch(input, init)
  entry.status = response.status
  if (response.status === 401) entry.www_authenticate = response.headers.get('www-authenticate')
  requests.push(entry)
  return response
}

class Provider {
  constructor() {
    this._state = randomBytes(16).toString('base64url')
    this.saved = {}
    if (options.client_metadata_url) this.clientMetadataUrl = options.client_metadata_url
  }
  get redirectUrl() {
    return redirectUri
  }
  get clientMetadata() {
    return {
      client_name: options.client_name,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: options.scope,
    }
  }
  state() {
    return this._state
  }
  clientInformation() {
    return this.saved.client
  }
  saveClientInformation(info) {
    this.saved.client = info
  }
  tokens() {
    return this.saved.tokens
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens
  }
  redirectToAuthorization(url) {
    emit({ authorization_url: url.href })
  }
  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier
  }
  codeVerifier() {
    return this.saved.verifier
  }
}

// The browser's arrival on the callback: its query, answered with a small page.
function callback() {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      const url = new URL(req.url, redirectUri)
      if (url.pathname !== '/callback') {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>Signed in; back to the app.</p>')
      server.close()
      resolve(url.searchParams)
    })
    server.on('error', reject)
    server.listen(options.callback_port, '127.0.0.1')
  })
}

async function connect(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(options.server_url), {
    authProvider: provider,
    fetch: recordingFetch,
  })
  const mcp = new Client({ name: 'tokensmith-e2e', version: '1.0.0' })
  await mcp.connect(transport)
  return { mcp, transport }
}

await run(async () => {
  const provider = new Provider()
  const arrived = callback()

  step('connect without a token')
  let transport
  try {
    await connect(provider)
    throw new Error('the MCP server answered without a token')
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err
  }
  // connect() made its own transport; finishAuth needs one with the same provider
  transport = new StreamableHTTPClientTransport(new URL(options.server_url), {
    authProvider: provider,
    fetch: recordingFetch,
  })

  step('callback')
  const query = await arrived
  if (query.get('error')) throw new Error(`authorization refused: ${query.get('error')}`)
  if (query.get('state') !== provider.state()) throw new Error('state mismatch')
  const issuer = provider.saved.client?.issuer
  if (issuer !== undefined && query.get('iss') !== issuer) {
    throw new Error(`iss ${query.get('iss')} is not ${issuer}`)
  }

  step('token')
  await transport.finishAuth(query.get('code'))

  step('call whoami')
  const { mcp } = await connect(provider)
  const tools = (await mcp.listTools()).tools.map((tool) => tool.name)
  const result = await mcp.callTool({ name: 'whoami', arguments: {} })
  await mcp.close()
  emit({
    requests,
    client_information: provider.saved.client,
    tokens: { scope: provider.saved.tokens.scope, token_type: provider.saved.tokens.token_type },
    iss: query.get('iss'),
    tools,
    whoami: result.structuredContent ?? JSON.parse(result.content[0].text),
  })
  process.exit(0)
})
