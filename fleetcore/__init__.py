"""The fleet's shared core: what the bot and the agents both need, and nothing Matrix.

Configuration, secrets, logging, storage helpers, the Gitea client, the crisis detector, the
bus protocol and the model fallback chain live here, so the two processes (`bot`, the Matrix
front door, and `agents`, the workers) import this package and never each other.
"""

__version__ = "0.1.0"
