"""`fleet`: the one console script.

Secrets are never accepted as arguments (they would show in `ps` and shell history); every
command that needs one reads it through the config's secret references.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from fleetcore import __version__

DEFAULT_CONFIG = Path(os.environ.get("HERMES_CONFIG", "config.yaml"))
EXIT_BAD_CONFIG = 2


def _load(path: Path):  # type: ignore[no-untyped-def]
    from fleetcore.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: invalid configuration", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def cmd_config_check(args: argparse.Namespace) -> int:
    from fleetcore.config import ConfigError, check_secrets, load_config

    try:
        cfg = load_config(args.path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{problem}")
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_BAD_CONFIG
    problems = check_secrets(cfg) if args.secrets else []
    for problem in problems:
        print(f"{problem}")
    for warning in cfg.warnings():
        print(f"warning: {warning}")
    if problems:
        return EXIT_BAD_CONFIG
    print(f"{args.path}: ok")
    return 0


def cmd_bot(args: argparse.Namespace) -> int:
    from bot.app import run_forever
    from fleetcore import log

    cfg = _load(args.config)
    log.setup(cfg.log_level)
    asyncio.run(run_forever(cfg))
    return 0


def cmd_bot_identity(args: argparse.Namespace) -> int:
    from bot.crosssign.cli import print_identity
    from bot.matrix.state import load_session

    cfg = _load(args.config)
    session = load_session(cfg.bot_dir / "session.json")
    if session is None:
        print(f"no bot session in {cfg.bot_dir}: start the bot once (fleet bot) first")
        return 1
    return print_identity(
        cfg.matrix.homeserver,
        session.access_token,
        session.user_id,
        session.device_id,
        cfg.bot_dir,
    )


def cmd_up(args: argparse.Namespace) -> int:
    from fleet.local.up import up_main

    return up_main(args.state_dir, nats_cluster=args.nats_cluster)


def cmd_demo(args: argparse.Namespace) -> int:
    from fleet.local.demo import demo_main

    return demo_main(args.state_dir)


def cmd_safety_screen(args: argparse.Namespace) -> int:
    from fleetcore.safety.cli import screen_main

    return screen_main(["--plain"] if args.plain else [])


def cmd_safety_eval(args: argparse.Namespace) -> int:
    from fleetcore.safety.cli import eval_main

    return eval_main(args.file, as_json=args.json)


def cmd_review(args: argparse.Namespace) -> int:
    from fleet.review import review_main

    cfg = _load(args.config)
    return review_main(cfg, args.review_command, getattr(args, "user", None))


def cmd_safety_test(args: argparse.Namespace) -> int:
    from fleetcore.safety.modelgate import safety_test_main

    cfg = _load(args.config)
    return safety_test_main(cfg, model=args.model, all_models=args.all)


def cmd_chain_test(args: argparse.Namespace) -> int:
    from fleetcore.models.cli import chain_test_main

    cfg = _load(args.config)
    return chain_test_main(cfg, break_primary=args.break_primary)


def cmd_hook_install(args: argparse.Namespace) -> int:
    from bot.forge.cli import hook_install_main

    cfg = _load(args.config)
    return hook_install_main(cfg, args.project)


def cmd_wolf(args: argparse.Namespace) -> int:
    from agents.wolf import wolf_main

    cfg = _load(args.config)
    return wolf_main(cfg, name=args.name, tier=args.tier)


def cmd_agent_keygen(args: argparse.Namespace) -> int:
    from fleet.identity import keygen_main

    return keygen_main(args.name, args.out, args.about)


def cmd_agent(args: argparse.Namespace) -> int:
    from fleet import agentctl

    command = args.agent_command
    if command == "add":
        return agentctl.add_main(args.config, args.name, args.tier)
    if command == "remove":
        return agentctl.remove_main(args.config, args.name)
    if command == "show":
        return agentctl.show_main(args.config, args.name)
    return agentctl.list_main(args.config)


def cmd_soul(args: argparse.Namespace) -> int:
    from fleet.identity import soul_sign_main, soul_verify_main

    cfg = _load(args.config)
    run = soul_sign_main if args.soul_command == "sign" else soul_verify_main
    return run(cfg, args.soul)


def cmd_doctor(args: argparse.Namespace) -> int:
    from fleet.doctor import doctor_main

    return doctor_main(args.config, as_json=args.json, timeout_s=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fleet", description="Hermes fleet")
    p.add_argument("--version", action="version", version=f"hermes-fleet {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str, parent: object = sub
    ) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help_, description=help_)  # type: ignore[attr-defined]
        sp.set_defaults(func=func)
        return sp

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config YAML")
        return sp

    bot = with_config(add("bot", cmd_bot, "run the Matrix bot"))
    bot_sub = bot.add_subparsers(dest="bot_command")
    with_config(add("identity", cmd_bot_identity, "show the bot's cross-signing identity", bot_sub))

    cfg = add("config", lambda a: 2, "configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = add("check", cmd_config_check, "validate a config file", cfg_sub)
    check.add_argument("path", nargs="?", type=Path, default=DEFAULT_CONFIG)
    check.add_argument(
        "--secrets", action="store_true", help="also check that every secret is available"
    )

    for name, func, help_ in (
        ("up", cmd_up, "run the whole fleet locally on embedded defaults"),
        ("demo", cmd_demo, "run the fleet locally with a scripted operator, then exit"),
    ):
        sp = add(name, func, help_)
        sp.add_argument("--state-dir", type=Path, default=Path(".fleet"))
        if name == "up":
            sp.add_argument(
                "--nats-cluster",
                type=int,
                choices=(3, 5),
                default=0,
                metavar="N",
                help="run NATS as a JetStream cluster of N (3 or 5) nodes on loopback, "
                "every stream replicated on each",
            )

    safety = add("safety", lambda a: 2, "crisis detector tools")
    safety_sub = safety.add_subparsers(dest="safety_command", required=True)
    scr = add("screen", cmd_safety_screen, "screen JSON lines from stdin", safety_sub)
    scr.add_argument("--plain", action="store_true", help="read plain text lines")
    ev = add(
        "eval",
        cmd_safety_eval,
        "recall and false-positive rate per kind on a labelled JSON-lines file",
        safety_sub,
    )
    ev.add_argument("file", type=Path, help='rows {"text", "label": crisis|safe, "kind"}')
    ev.add_argument("--json", action="store_true", help="print the report as JSON")

    review = add("review", lambda a: 2, "crisis holds in the bot's state (at the machine)")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    with_config(add("list", cmd_review, "list who is on hold", review_sub))
    rc = with_config(add("clear", cmd_review, "lift a hold after a human checked in", review_sub))
    rc.add_argument("user", help="the held user, e.g. @sam:example.org")

    st = with_config(add("safety-test", cmd_safety_test, "run safety tests against models"))
    group = st.add_mutually_exclusive_group()
    group.add_argument("--model", help="provider name to test")
    group.add_argument("--all", action="store_true", help="test every configured provider")

    chain = add("chain", lambda a: 2, "model fallback chain tools")
    chain_sub = chain.add_subparsers(dest="chain_command", required=True)
    ct = with_config(
        add("test", cmd_chain_test, "call each provider with a tiny prompt", chain_sub)
    )
    ct.add_argument("--break-primary", action="store_true", help="simulate a bad primary key")

    forge = add("forge", lambda a: 2, "Gitea tools")
    forge_sub = forge.add_subparsers(dest="forge_command", required=True)
    hook = add("hook", lambda a: 2, "webhooks", forge_sub)
    hook_sub = hook.add_subparsers(dest="hook_command", required=True)
    hi = with_config(add("install", cmd_hook_install, "register the webhook on a repo", hook_sub))
    hi.add_argument("project")

    agent = add("agent", lambda a: 2, "agent identities")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    kg = add("keygen", cmd_agent_keygen, "make an agent's Nostr key and NATS NKey", agent_sub)
    kg.add_argument("name")
    kg.add_argument("--out", type=Path, required=True, help="directory for the keys (0700)")
    kg.add_argument("--about", help="the profile's about text")
    aa = with_config(
        add("add", cmd_agent, "make an agent whole: keys, Gitea user, NATS user", agent_sub)
    )
    aa.add_argument("name")
    aa.add_argument("--tier", choices=("wolves", "workers", "strategists"), default="wolves")
    with_config(add("list", cmd_agent, "the fleet's agents and their last heartbeat", agent_sub))
    for verb, help_ in (
        ("show", "one agent's public identity and where its files are"),
        ("remove", "revoke an agent: Gitea token and user, NATS user; archive its keys"),
    ):
        with_config(add(verb, cmd_agent, help_, agent_sub)).add_argument("name")

    soul = add("soul", lambda a: 2, "SOUL.md signature")
    soul_sub = soul.add_subparsers(dest="soul_command", required=True)
    for name, help_ in (
        ("sign", "sign SOUL.md with the fleet's Nostr key (made on first use)"),
        ("verify", "check SOUL.md's signature (exit 0 only when valid)"),
    ):
        sp = with_config(add(name, cmd_soul, help_, soul_sub))
        sp.add_argument("--soul", type=Path, help="the file (default: the config's soul)")

    doc = with_config(
        add("doctor", cmd_doctor, "check a deployment; exit 0 only when everything holds")
    )
    doc.add_argument("--json", action="store_true", help="print the results as JSON")
    doc.add_argument("--timeout", type=float, default=5.0, help="seconds per network check")

    wolf = with_config(add("wolf", cmd_wolf, "run a worker agent"))
    wolf.add_argument("--name", required=True)
    wolf.add_argument("--tier", default="wolves")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bot" and getattr(args, "bot_command", None) == "identity":
        return cmd_bot_identity(args)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
