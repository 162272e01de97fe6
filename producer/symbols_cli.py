"""`python -m producer symbols list|add|remove|set`: the fleet's symbol list, changed while the
producers run (each member sees the change through its watch and takes or lets go of symbols)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from common.contract import ContractError, parse_symbols
from common.fleet import SymbolListError, SymbolStore, connect
from common.settings import COORDINATOR, FLEET_CHROOT, fail, servers

PROG = "python -m producer symbols"


def _symbols(text: str) -> tuple[str, ...]:
    try:
        return tuple(parse_symbols(text))
    except ContractError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Show or change the symbols a fleet of producers (--coordinator) fetches.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    where = argparse.ArgumentParser(add_help=False)
    # The producers' own options (common.settings), but a ZooKeeper by default: the native
    # stack's, where the fleet of `make local` runs.
    where.add_argument(
        COORDINATOR.flag,
        default=os.environ.get(COORDINATOR.env) or "127.0.0.1:2181",
        type=servers,
        help=f"ZooKeeper host:port[,host:port] [env: {COORDINATOR.env}] (default: %(default)s)",
    )
    where.add_argument(
        FLEET_CHROOT.flag,
        default=os.environ.get(FLEET_CHROOT.env) or FLEET_CHROOT.default,
        type=FLEET_CHROOT.check,
        help=f"{FLEET_CHROOT.help} [env: {FLEET_CHROOT.env}] (default: %(default)s)",
    )
    sub.add_parser("list", parents=[where],
                   help="each symbol, the member holding it and its newest tick")  # fmt: skip
    for name, what in (("add", "add to the list"), ("remove", "take off the list"),
                       ("set", "replace the list with")):  # fmt: skip
        cmd = sub.add_parser(name, parents=[where], help=f"{what} these symbols")
        cmd.add_argument("symbols", nargs="+", help="comma or space separated: AAPL,MSFT")
    return parser


def _edit(command: str, symbols: tuple[str, ...]):
    if command == "add":
        return lambda current: (*current, *symbols)
    if command == "remove":
        return lambda current: tuple(s for s in current if s not in symbols)
    return lambda _current: symbols


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def show(store: SymbolStore) -> str:
    found = store.read()
    if found is None:
        return "no symbol list yet (a producer with --coordinator writes its --symbols)"
    symbols, version = found
    owners, members = store.owners(), store.members()
    lines = [f"symbols (version {version}), {len(members)} member(s):",
             f"{'SYMBOL':<16}{'HELD BY':<22}LAST TICK"]  # fmt: skip
    for symbol in symbols:
        owner = owners.get(symbol)
        member = members.get(owner or "")
        last = member.last_ticks.get(symbol) if member else None
        lines.append(f"{symbol:<16}{owner or '(nobody)':<22}{_when(last)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from kazoo.exceptions import KazooException
    from kazoo.handlers.threading import KazooTimeoutError

    parser = build_parser()
    args = parser.parse_args(argv)
    # kazoo logs every refused connection attempt; the one line below says it instead.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if args.command != "list":
        try:
            args.symbols = _symbols(" ".join(args.symbols))
        except argparse.ArgumentTypeError as e:
            parser.error(str(e))
    try:
        client = connect(args.coordinator, args.fleet_chroot, start_timeout_s=5.0)
    except (KazooException, KazooTimeoutError, OSError, ValueError) as e:
        fail(PROG, f"cannot reach ZooKeeper at {args.coordinator} ({type(e).__name__}: {e})")
    try:
        store = SymbolStore(client)
        if args.command == "list":
            print(show(store))
        else:
            written = store.change(_edit(args.command, args.symbols))
            print(f"symbols: {','.join(written) or '(none)'}")
    except SymbolListError as e:
        fail(PROG, str(e))
    finally:
        client.stop()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
