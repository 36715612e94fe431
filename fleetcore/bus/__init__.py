"""The NATS bus shared by the bot and the wolves: tasks out, results back, a live registry.

JetStream rather than core NATS because a task must survive a wolf crash and a server
restart, and must reach exactly one wolf of its tier.
"""
