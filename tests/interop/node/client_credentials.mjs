// Client credentials grant (RFC 6749 §4.4) with openid-client: prints {"tokens"}, then the
// same request for a scope the client may not have as {"refused"}.
import * as client from 'openid-client'
import { configure, emit, options, refusal, run, step, tokenSummary } from './common.mjs'

await run(async () => {
  step('discovery')
  const config = await configure()
  step('client credentials grant')
  const tokens = await client.clientCredentialsGrant(config, { scope: options.scope })
  const refused = options.bad_scope
    ? await refusal(client.clientCredentialsGrant(config, { scope: options.bad_scope }))
    : null
  emit({ tokens: tokenSummary(tokens), refused })
})
