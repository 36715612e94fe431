"""Burn night on the bot side: start a burn, follow its results, report them in one message."""
