"""Sandbox services for `fleet up` and `fleet demo`: a small Gitea and a scripted model.

They are product components (the wheel ships them), not test doubles: the tests wrap the
same forge in Gitea's swagger and generated models to keep it honest.
"""
