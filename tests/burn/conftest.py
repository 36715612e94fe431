"""Each burn test gets its own nats-server: burns share stream and consumer names, and a
test that restarts the server must not disturb the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.local.nats import NatsServer
from fleettest.burnrig import BurnRig


@pytest.fixture
async def rig(own_nats: NatsServer, tmp_path: Path) -> AsyncIterator[BurnRig]:
    async with BurnRig(own_nats.url, tmp_path / "bot", issues=30) as r:
        yield r
        assert r.gitea.violations == [], r.gitea.violations
