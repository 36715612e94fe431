"""The model fallback chain: one client, many providers, never deaf."""

from agents.models.chain import ChainExhausted, Completion, FallbackChain, NoPrivateProvider

__all__ = ["ChainExhausted", "Completion", "FallbackChain", "NoPrivateProvider"]
