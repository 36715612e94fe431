"""Cross-signing for the bot (its own identity) and identity-level trust in operators.

matrix-nio 0.26 has no cross-signing, and Element is moving to exclude devices that are not
signed by their owner's identity (MSC4153), so the fleet brings its own: signed JSON through
`canonicaljson`/`signedjson` (what Synapse signs with), and the client-server API over httpx.

- `signing`: canonical JSON, sign and verify (pure; thin wrappers over signedjson).
- `keys`: the bot's three private keys, kept 0600 next to its store.
- `verify`: signature checks, identity-TOFU decisions and pins (pure apart from the pin
  file); `bot.matrix.trust` turns them into device trust in nio.
- `operators`: the latest keys query per operator, asked per device (`OperatorTrust`).
- `api`: upload keys, sign our device, query keys, `ensure_identity` (network).
- `cli`: `fleet bot identity`.
"""
