"""The model fallback chain: one client, many providers, never deaf."""

from fleetcore.models.chain import ChainExhausted, Completion, FallbackChain, NoPrivateProvider

__all__ = ["ChainExhausted", "Completion", "FallbackChain", "NoPrivateProvider"]
