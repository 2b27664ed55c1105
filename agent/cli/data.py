"""``adpilot data init``: build the embedded demo world in the home's warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json, settings_for
from agent.errors import BadInput


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group."""
    data = typer.Typer(help="Manage the warehouse (demo world).", no_args_is_help=True)
    app.add_typer(data, name="data")

    @data.command("init")
    def init(
        home: HomeOpt = None,
        scale: Annotated[int, typer.Option(help="Grow the world: products, ads and rows scale linearly.")] = 1,
        seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 42,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing warehouse.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Create the demo world: a fictional European outdoor shop with Google Ads and Meta accounts."""
        from tools.warehouse.demo import init_home

        if not 1 <= scale <= 1000:
            raise BadInput(f"--scale must be between 1 and 1000, got {scale}")
        if not 0 <= seed <= 2**31 - 1:
            raise BadInput(f"--seed must be between 0 and {2**31 - 1}, got {seed}")
        settings = settings_for(home)
        path = settings.warehouse_path
        if path.exists():
            if not force:
                raise BadInput(f"{path} already exists; pass --force to replace it")
            path.unlink()
            path.with_suffix(".duckdb.wal").unlink(missing_ok=True)
        report = init_home(path, scale=scale, seed=seed)
        if json_out:
            print_json({"path": str(path), "scale": scale, "seed": seed, "today": report.today.isoformat(),
                        "counts": report.counts, "seconds": round(report.seconds, 2),
                        "size_bytes": report.size_bytes})
            return
        out = console()
        out.print(f"demo world written to {path} (scale {scale}, seed {seed}) in {report.seconds:.1f} s, "
                  f"{(report.size_bytes or 0) / 1e6:.1f} MB")
        for table, count in report.counts.items():
            out.print(f"  {table:<18} {count:>10,}")
