"""Remote wolves: a leaf nats-server on the wolf's machine, linked out to the hub.

A wolf behind NAT cannot be dialled, so its machine runs a leaf node that dials the hub
(one outbound TLS connection) and the wolf talks only to its local leaf. The hub keeps
JetStream in a named domain (`jetstream { domain: hub }`); the leaf has its own domain,
so a wolf must name the hub's to reach the fleet's streams (`bus.jetstream_domain`).

Who is on the link, and what it may do, is decided at the hub:

- the link is mutual TLS: the leaf shows a client certificate from the fleet's CA
  (fleetcore/bus/pki.py), and the hub maps its subject (`CN=<wolf>`, `verify_and_map`) to
  a hub user that holds exactly that wolf's rights (fleetcore/bus/auth.py), with the JetStream
  API subjects named through the domain (`$JS.<domain>.API...`), as they cross the link.
  A misused wolf machine gets no more than its wolf would.
- the wolf's NKey lets it on its own leaf: no other local process can use the link; and
  its user there holds the same rights as the link (`leaf_config(rights=...)`), so the
  leaf itself refuses anything else, its own JetStream included.

What nats-server 2.9 enforces at the hub, and what it does not: the hub delivers to the
link only what the wolf may receive (its own inbox), checked per message. Writes are
kept to the wolf's rights by interest: the hub tells the leaf only the subjects the link
may publish to, and the leaf forwards nothing else; a message that arrives anyway is not
checked again (2.9.10's processInboundLeafMsg), so a tampered leaf binary could write
outside them. A hub in the leaf's own account, importing just what wolves use, would
close that; it is not done here.

The interest has one catch: the hub offers a subject to the link only if the link may
publish to all of it, and the results stream's subjects are wider than one wolf's rights
(`fleet.results.>` against `fleet.results.*.<wolf>`). So the hub's account maps each
link's result subject onto itself (`mappings`): a mapping is interest the hub always
offers, and it offers exactly the wolf's subject. Bucket writes need no such help: they
cross as `$JS.<domain>.API.$KV...`, which the hub's domain mapping already offers.

NKeys on the link itself: nats-server 2.10.9 and later let a remote sign with an NKey seed
(`remotes: [{ nkey: ... }]`, nats-io/nats-server#3196); 2.9 (Debian's) cannot (a remote
sends only a user JWT or a password), so the certificate is the link's credential.

Pure: the texts returned here are written and loaded by nats-server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetcore.bus.auth import (
    JS_API,
    AgentUser,
    BusUsers,
    Permissions,
    TLSFiles,
    agent_permissions,
)
from fleetcore.bus.subjects import RESULTS_PREFIX

HUB_DOMAIN = "hub"
# Token wildcards in a mapping's source are numbered for its destination.
_WILDCARD = "{{wildcard(%d)}}"
LEAF_DOMAIN = "leaf"


def cert_subject(name: str) -> str:
    """The subject nats-server reads from a certificate the fleet's CA issued to `name`."""
    return f"CN={name}"


@dataclass(frozen=True)
class LeafLink:
    """A remote wolf's leaf node, known to the hub by its certificate's name."""

    agent: AgentUser
    # The client certificate's common name (FleetCA.issue_client(name)); the wolf's name
    # unless one machine's leaf is named otherwise.
    cert_name: str

    @property
    def subject(self) -> str:
        return cert_subject(self.cert_name)


def through_domain(subject: str, domain: str) -> str:
    """A JetStream API subject, or a bucket write, as it crosses a leaf link towards the
    hub's domain (fleetcore/bus/streams.py's DomainJetStream writes buckets so)."""
    if subject.startswith(f"{JS_API}."):
        return f"$JS.{domain}.API." + subject.removeprefix(f"{JS_API}.")
    if subject.startswith("$KV."):
        return f"$JS.{domain}.API.{subject}"
    return subject


def link_permissions(agent: AgentUser, domain: str = HUB_DOMAIN) -> Permissions:
    """The wolf's own rights, for its leaf's link: API calls come through the domain."""
    own = agent_permissions(agent)
    return Permissions(tuple(through_domain(s, domain) for s in own.publish), own.subscribe)


def own_subjects(agent: AgentUser) -> dict[str, str]:
    """Identity mappings for the subjects only this wolf writes, narrower than a stream's."""
    own = (f"{RESULTS_PREFIX}.*.{agent.name}",)
    out = {}
    for subject in own:
        n = 0
        tokens = []
        for token in subject.split("."):
            if token == "*":
                n += 1
                token = _WILDCARD % n
            tokens.append(token)
        out[subject] = ".".join(tokens)
    return out


def hub_config(
    users: BusUsers,
    links: tuple[LeafLink, ...],
    leaf_tls: TLSFiles,
    leaf_listen: str,
    *,
    domain: str = HUB_DOMAIN,
) -> str:
    """The hub's configuration: the fleet's users, one more per leaf link, the leafnode
    listener (mutual TLS, certificates mapped to those users) and the JetStream domain.

    JetStream's store directory is left to the command line (`-sd`), as for any server.
    """
    entries: list[dict[str, Any]] = [{"nkey": users.bot_nkey}]
    for agent in sorted(users.agents, key=lambda a: a.name):
        entries.append({"nkey": agent.nkey, "permissions": agent_permissions(agent).as_conf()})
    for link in sorted(links, key=lambda x: x.cert_name):
        entries.append(
            {"user": link.subject, "permissions": link_permissions(link.agent, domain).as_conf()}
        )
    # verify_and_map: verify the certificate against the CA, then take its subject as the user.
    tls = {k: v for k, v in leaf_tls.as_conf().items() if k != "verify"}
    leafnodes = {"listen": leaf_listen, "tls": {**tls, "verify_and_map": True}}
    mappings: dict[str, str] = {}
    for link in links:
        mappings.update(own_subjects(link.agent))
    parts = [
        "# The fleet's hub (fleetcore/bus/leaf.py): the bot, agents, and remote wolves' leaves.",
        "authorization: " + json.dumps({"users": entries}, indent=2),
        "jetstream: " + json.dumps({"domain": domain}),
        "leafnodes: " + json.dumps(leafnodes, indent=2),
    ]
    if mappings:
        parts.append("mappings: " + json.dumps(mappings, indent=2))
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class LeafTLS:
    """The leaf's side of the link: its certificate from the fleet's CA, and the CA."""

    cert: Path
    key: Path
    ca: Path


def leaf_config(
    wolf_nkey: str,
    hub_leaf_urls: list[str],
    tls: LeafTLS,
    *,
    server_name: str,
    domain: str | None = LEAF_DOMAIN,
    rights: Permissions | None = None,
) -> str:
    """The wolf machine's leaf node: only the wolf's NKey may connect to it, and it dials
    the hub's leafnode port (`tls://hub:7422`) with its certificate.

    `rights` (`link_permissions(agent)`: the wolf's own, named through the hub's domain)
    hold the wolf to them on its leaf already, with the leaf's own permissions violation
    at once: not only does nothing else cross the link, the wolf cannot use the leaf's
    own JetStream, or any subject, for anything but its work.
    """
    user: dict[str, Any] = {"nkey": wolf_nkey}
    if rights is not None:
        user["permissions"] = rights.as_conf()
    remote = {
        "urls": hub_leaf_urls,
        "tls": {"cert_file": str(tls.cert), "key_file": str(tls.key), "ca_file": str(tls.ca)},
    }
    parts = [
        "# A remote wolf's leaf node (fleetcore/bus/leaf.py): it dials out to the hub.",
        f"server_name: {json.dumps(server_name)}",
        "authorization: " + json.dumps({"users": [user]}, indent=2),
        "leafnodes: " + json.dumps({"remotes": [remote]}, indent=2),
    ]
    if domain is not None:
        parts.insert(3, "jetstream: " + json.dumps({"domain": domain}))
    return "\n".join(parts) + "\n"
