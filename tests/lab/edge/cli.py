"""``python -m edge fleet``: the command line."""
from __future__ import annotations

import argparse
import asyncio

from .fleet import FleetConfig, parse_sources, run_fleet
from .profiles import PROFILES


def server_address(text: str, default_port: int = 10000) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6] or [V6]:PORT."""
    if text.startswith("["):
        host, _bracket, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description="The lab's edge fleet (edgecore's edgehub).")
    commands = parser.add_subparsers(dest="command", required=True)
    fleet = commands.add_parser("fleet", help="run N edges until SIGTERM/SIGINT or --duration",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fleet.add_argument("--count", type=int, required=True, help="number of edges")
    fleet.add_argument("--profile", choices=sorted(PROFILES), default="edgecore-1.23")
    fleet.add_argument("--server", required=True, help="CloudHub HOST[:PORT] (the VIP), default port 10000")
    fleet.add_argument("--tunnel-port", type=int, default=10004, help="edgestream's port on the same host")
    fleet.add_argument("--no-tunnel", action="store_true", help="no edgestream (its upstream default is off)")
    fleet.add_argument("--source-addresses", required=True,
                       help="CIDR(s) or addresses, comma-separated; one per edge, for both of its connections")
    fleet.add_argument("--ca-cert", required=True, help="CloudCore's CA certificate (PEM or DER)")
    fleet.add_argument("--ca-key", required=True, help="its key (PEM or DER): signs one client certificate per edge")
    fleet.add_argument("--cert-dir", help="where the edge certificates go (default: a temporary directory)")
    fleet.add_argument("--timeline", help="JSON timeline written at exit")
    fleet.add_argument("--status-file", help="JSON status rewritten every --status-interval")
    fleet.add_argument("--status-interval", type=float, default=1.0)
    fleet.add_argument("--ramp", type=float, default=100.0, help="edges started per second (0: all at once)")
    fleet.add_argument("--name-prefix", default="edge-", help="node names PREFIX0001...")
    fleet.add_argument("--duration", type=float, default=3600.0, help="stop by itself after S seconds (0: never)")
    fleet.add_argument("--seed", type=int, help="seed of the backoff jitter")
    knobs = fleet.add_argument_group("overrides of the profile (default: the real edgecore's)")
    for flag, kind, text in (
            ("--heartbeat", float, "keepalive period; the v1.23.1 reconnect wait is 2x this"),
            ("--handshake-timeout", float, "per dial: TCP + TLS + upgrade"),
            ("--write-deadline", float, ""), ("--read-deadline", float, "applied only by edgecore-next"),
            ("--dial-attempts", int, "dials per Init"), ("--dial-interval", float, "sleep after a failed dial"),
            ("--backoff-initial", float, "edgecore-next"), ("--backoff-factor", float, ""),
            ("--backoff-jitter", float, ""), ("--backoff-cap", float, "also the reset threshold"),
            ("--tunnel-interval", float, "edgestream's ticker"), ("--tunnel-ping", float, ""),
            ("--tunnel-handshake-timeout", float, ""), ("--project-id", str, "")):
        knobs.add_argument(flag, type=kind, help=text or None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile].override(
        heartbeat=args.heartbeat, handshake_timeout=args.handshake_timeout, write_deadline=args.write_deadline,
        read_deadline=args.read_deadline, dial_attempts=args.dial_attempts, dial_interval=args.dial_interval,
        backoff_initial=args.backoff_initial, backoff_factor=args.backoff_factor,
        backoff_jitter=args.backoff_jitter, backoff_cap=args.backoff_cap, tunnel_interval=args.tunnel_interval,
        tunnel_ping=args.tunnel_ping, tunnel_handshake_timeout=args.tunnel_handshake_timeout,
        project_id=args.project_id, tunnel=False if args.no_tunnel else None)
    try:
        sources = parse_sources(args.source_addresses, args.count)
    except ValueError as exc:
        parser.error(str(exc))
    config = FleetConfig(
        count=args.count, profile=profile, server=server_address(args.server), tunnel_port=args.tunnel_port,
        sources=sources, ca_cert=args.ca_cert, ca_key=args.ca_key, timeline=args.timeline,
        status_file=args.status_file, status_interval=args.status_interval, ramp=args.ramp,
        name_prefix=args.name_prefix, cert_dir=args.cert_dir, duration=args.duration, seed=args.seed)
    try:
        return asyncio.run(run_fleet(config))
    except ValueError as exc:
        parser.error(str(exc))
    return 2
