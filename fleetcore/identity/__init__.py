"""Sovereign identities for the fleet and its agents: Nostr keys and NATS NKeys.

Core, not bot or agent code: the bot signs and checks, agents check and prove who they are,
and both use the same keys. Offline and pure where it can be (`nostr`, `nkey`); `keystore`
is the only part that touches the disk.
"""
