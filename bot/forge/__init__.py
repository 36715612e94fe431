"""Gitea: the fleet's work lives there. Client, webhooks and their config."""
