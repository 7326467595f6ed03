"""`tts-gateway tenants create|list|update|rotate-key|revoke`: tenant management against the store
(DATABASE_URL, or the embedded SQLite), without the API running. Keys are printed once."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from control_plane.errors import ServiceError
from control_plane.services.tenants import TenantService, tenant_view
from control_plane.services.tiers import TIERS
from control_plane.settings import Settings, get_settings
from tts_contract.fairness import WEIGHT_RANGE

LIMIT_OPTIONS = {
    "--rpm": "requests_per_minute", "--rph": "requests_per_hour", "--rpd": "requests_per_day",
    "--max-streams": "max_concurrent_streams", "--monthly-characters": "monthly_characters",
    "--max-voices": "max_voices",
}


def _add_limits(p: argparse.ArgumentParser) -> None:
    for flag, field in LIMIT_OPTIONS.items():
        p.add_argument(flag, dest=field, type=int, default=None, metavar="N")
    p.add_argument("--tier", choices=list(TIERS), default=None, help="priority tier (sets the weight)")
    p.add_argument("--weight", type=float, default=None, metavar="W",
                   help=f"fair-share weight, {WEIGHT_RANGE[0]:g} to {WEIGHT_RANGE[1]:g} (instead of the tier's)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tts-gateway tenants", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a tenant and print its API key (shown once)")
    create.add_argument("name")
    _add_limits(create)
    sub.add_parser("list", help="list tenants")
    update = sub.add_parser("update", help="change a tenant's limits, tier or weight")
    update.add_argument("tenant", help="tenant id or name")
    _add_limits(update)
    rotate = sub.add_parser("rotate-key", help="issue a new key (printed once)")
    rotate.add_argument("tenant", help="tenant id or name")
    rotate.add_argument("--grace-seconds", type=int, default=0,
                        help="how long the current keys keep working (default 0: refused at once)")
    revoke = sub.add_parser("revoke", help="revoke a tenant and all its keys")
    revoke.add_argument("tenant", help="tenant id or name")
    return parser


def _limits(args: argparse.Namespace) -> dict[str, int]:
    return {f: getattr(args, f) for f in LIMIT_OPTIONS.values() if getattr(args, f, None) is not None}


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from control_plane.adapters.store import Store

    store = Store.from_settings(settings)
    try:
        if not store.db.is_postgres:
            await store.db.create_all()
        service = TenantService(store, settings)
        if args.command == "create":
            row, key = await service.create(args.name, tier=args.tier, weight=args.weight, **_limits(args))
            return {**tenant_view(row), "api_key": key}
        if args.command == "list":
            return {"tenants": [tenant_view(r) for r in await service.list()]}
        row = await service.resolve(args.tenant)
        if args.command == "update":
            updated = await service.update(row.id, **_limits(args))
            if args.tier is not None or args.weight is not None:
                updated = await service.set_tier(row.id, args.tier, args.weight)
            return tenant_view(updated)
        if args.command == "rotate-key":
            key, until = await service.rotate_key(row.id, args.grace_seconds)
            return {"tenant_id": row.id, "api_key": key,
                    "previous_keys_valid_until": until.isoformat() if until else None}
        return tenant_view(await service.revoke(row.id))
    finally:
        await store.close()


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for t in result.get("tenants", [result]):
        if "name" in t:
            limits = " ".join(f"{k}={v}" for k, v in t["limits"].items())
            print(f"{t['tenant_id']}  {t['name']}  {t['status']}  {limits}")
    if "api_key" in result:
        print(f"api key (shown once): {result['api_key']}")
        if result.get("previous_keys_valid_until"):
            print(f"previous keys valid until {result['previous_keys_valid_until']}")


def main(argv: list[str], settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = asyncio.run(run(args, settings or get_settings()))
    except ServiceError as exc:
        print(f"tts-gateway tenants: {exc.message}", file=sys.stderr)
        return 1
    _print(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
