"""The command line: parse options, build what the core needs, render results, map errors to exits.

Exit codes: 0 success; 1 a sync, check or `status --check` failed; 2 usage or configuration error;
3 another run holds the fabric's lock.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress

from hhsync import __version__
from hhsync.check import run_checks
from hhsync.config import Config, FabricConfig, find_config, load_config, load_token
from hhsync.deadline import Deadline
from hhsync.errors import ConfigError, HhsyncError, UsageError
from hhsync.kube.source import Source
from hhsync.logs import setup_logging
from hhsync.netbox.client import NetBox
from hhsync.render import print_json, table
from hhsync.report import PLAN_COLUMNS, plan_rows
from hhsync.sync import Outcome, sync_fabric

app = typer.Typer(
    help="Keep NetBox an exact, current mirror of Hedgehog fabrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Cli:
    config_path: Path | None
    verbose: int
    quiet: bool
    _config: Config | None = field(default=None, repr=False)

    @property
    def out(self) -> Console:
        return Console(highlight=False, soft_wrap=True)

    @property
    def err(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True)

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(find_config(self.config_path))
            if not self.quiet:
                for warning in self._config.warnings:
                    self.err.print(f"hhsync: warning: {warning}")
        return self._config

    def fabrics(self, names: list[str] | None) -> list[FabricConfig]:
        config = self.config()
        if names:
            return [config.fabric(name) for name in names]
        return list(config.fabrics.values())

    def netbox(self) -> NetBox:
        config = self.config()
        token = load_token(config.netbox, config.path)
        setup_logging(self.verbose, self.quiet, secrets=[token])
        return NetBox(config.netbox, token)

    def fail(self, error: HhsyncError) -> NoReturn:
        self.err.print(f"hhsync: error: {error}", markup=False)
        if self.verbose:
            self.err.print("".join(traceback.format_exception(error)), markup=False)
        raise typer.Exit(error.exit_code)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn HhsyncError into one line on stderr and its exit code."""
        try:
            yield
        except HhsyncError as e:
            self.fail(e)


def open_source(fabric: FabricConfig) -> Source:
    """The fabric's source: its Kubernetes API, or YAML files for `source = "file:..."`."""
    if fabric.source is not None:
        from hhsync.kube.files import FileSource

        return FileSource(fabric.source, fabric.namespace)
    from hhsync.kube.client import KubeSource

    assert fabric.kubeconfig is not None  # config.py guarantees one of the two
    return KubeSource(fabric.kubeconfig, fabric.context, fabric.namespace, fabric.timeout)


def _version(value: bool) -> None:
    if value:
        print(f"hhsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: $HHSYNC_CONFIG, /etc/hhsync/config.toml, "
            "~/.config/hhsync/config.toml).",
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail; -vv for debug logs.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Keep NetBox an exact, current mirror of Hedgehog fabrics."""
    setup_logging(verbose, quiet)
    ctx.obj = Cli(config, verbose, quiet)


@app.command()
def check(
    ctx: typer.Context,
    fabrics: Annotated[
        list[str] | None, typer.Argument(help="Fabrics to check (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check the config, NetBox (version, token, permissions) and each fabric's API."""
    cli: Cli = ctx.obj
    with cli.errors():
        config = cli.config()
        results = run_checks(config, cli.fabrics(fabrics), cli.netbox, open_source)
    ok = all(c.ok for c in results)
    if as_json:
        print_json(cli.out, {"ok": ok, "checks": [c.__dict__ for c in results]})
    else:
        rows = [("ok" if c.ok else "FAIL", c.name, c.target, c.detail) for c in results]
        table(cli.out, ("result", "check", "target", "detail"), rows)
    raise typer.Exit(0 if ok else 1)


def _not_yet(ctx: typer.Context, what: str) -> NoReturn:
    cli: Cli = ctx.obj
    cli.fail(HhsyncError(f"{what} is not implemented yet"))


@app.command()
def sync(
    ctx: typer.Context,
    fabrics: Annotated[list[str] | None, typer.Argument(help="Fabrics to sync.")] = None,
    all_fabrics: Annotated[
        bool, typer.Option("--all", help="Every enabled fabric, several at once.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete", help="Apply a plan deleting more than max_delete_fraction."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Mirror fabrics into NetBox: discover, plan, apply, print one summary line per fabric."""
    cli: Cli = ctx.obj
    with cli.errors():
        targets = _targets(cli, fabrics, all_fabrics)
        outcomes = run_syncs(cli, targets, dry_run=dry_run, allow_mass_delete=allow_mass_delete)
    if as_json:
        print_json(cli.out, {"fabrics": [o.as_json() for o in outcomes]})
    else:
        for outcome in outcomes:
            if dry_run and outcome.plan is not None:
                table(cli.out, PLAN_COLUMNS, plan_rows(outcome.plan))
            if not cli.quiet:
                for skip in outcome.desired.skipped if outcome.desired else ():
                    cli.err.print(
                        f"hhsync: warning: {outcome.fabric}: skipped {skip}", markup=False
                    )
                for conflict in outcome.plan.conflicts if outcome.plan else ():
                    cli.err.print(
                        f"hhsync: warning: {outcome.fabric}: conflict: {conflict}", markup=False
                    )
                for failure in outcome.applied.failures if outcome.applied else ():
                    cli.err.print(f"hhsync: {outcome.fabric}: failed: {failure}", markup=False)
            cli.out.print(outcome.line(), markup=False)
    raise typer.Exit(0 if all(o.ok for o in outcomes) else 1)


def _targets(cli: Cli, names: list[str] | None, all_fabrics: bool) -> list[FabricConfig]:
    if bool(names) == all_fabrics:
        raise UsageError("name one or more fabrics, or pass --all")
    if all_fabrics:
        return [f for f in cli.config().fabrics.values() if f.enabled]
    return cli.fabrics(names)


def run_syncs(
    cli: Cli, fabrics: list[FabricConfig], *, dry_run: bool, allow_mass_delete: bool
) -> list[Outcome]:
    """Sync fabrics, up to [run] parallel at once; results in the order given."""
    config = cli.config()
    bar = Progress(console=cli.err, transient=True, disable=not cli.err.is_terminal or cli.quiet)

    def one(fabric: FabricConfig) -> Outcome:
        task = bar.add_task(fabric.name, total=None)
        netbox = cli.netbox()
        try:
            source = open_source(fabric)
        except HhsyncError as e:
            netbox.close()
            return Outcome(fabric.name, dry_run, error=str(e))
        try:
            return sync_fabric(
                fabric,
                netbox,
                source,
                now=datetime.now(UTC),
                deadline=Deadline(fabric.deadline),
                dry_run=dry_run,
                allow_mass_delete=allow_mass_delete,
                progress=lambda advance, total: bar.update(task, total=total, advance=advance),
            )
        finally:
            source.close()
            netbox.close()

    with bar, ThreadPoolExecutor(max_workers=config.run.parallel) as pool:
        return list(pool.map(one, fabrics))


@app.command()
def status(ctx: typer.Context) -> None:
    """Show each fabric's sync state from NetBox."""
    _not_yet(ctx, "status")


@app.command("bootstrap-timers")
def bootstrap_timers(
    ctx: typer.Context,
    unit_dir: Annotated[
        Path | None,
        typer.Option(
            "--unit-dir",
            help="Install into this image root (or its etc/systemd/system) instead of the "
            "running system; the timers are enabled offline, nothing is started.",
        ),
    ] = None,
    user: Annotated[
        bool,
        typer.Option("--user", help="Units for your own service manager (~/.config/systemd/user)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every file and command; change nothing.")
    ] = False,
    no_enable: Annotated[
        bool, typer.Option("--no-enable", help="Write the units, but do not enable the timers.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Disable and remove timers of fabrics no longer configured."),
    ] = False,
) -> None:
    """Write and enable a systemd timer for every enabled fabric; a rerun changes nothing."""
    from hhsync import systemd
    from hhsync.timers import plan_bootstrap

    cli: Cli = ctx.obj
    with cli.errors():
        config = cli.config()
        target = systemd.find_target(unit_dir, user=user, dry_run=dry_run)
        plan = plan_bootstrap(
            config,
            systemd.this_program(),
            target,
            systemd.scan(target),
            enable=not no_enable,
            prune=prune,
        )
        if not cli.quiet:
            for warning in plan.warnings:
                cli.err.print(f"hhsync: warning: {warning}", markup=False)
        lines = systemd.preview(plan, target) if dry_run else systemd.apply(plan, target)
        for line in lines:
            if dry_run or not cli.quiet:
                cli.out.out(line, highlight=False)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ConfigError as e:  # raised outside a command (never expected, but never a traceback)
        print(f"hhsync: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
