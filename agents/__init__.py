"""Wolves (worker agents) and the model fallback chain they and the bot share."""
