"""The `fleet` command and the local fleet: the one place that may compose bot and agents."""
