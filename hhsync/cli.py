"""The command line: parse options, build what the core needs, render results, map errors to exits.

Exit codes: 0 success; 1 a sync, check or `status --check` failed; 2 usage or configuration error;
3 another run holds the fabric's lock.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress

from hhsync import __version__, planfile
from hhsync.check import run_checks
from hhsync.config import (
    BRANCH_MODES,
    Config,
    FabricConfig,
    find_config,
    load_config,
    load_token,
)
from hhsync.console import print_json, table
from hhsync.deadline import unlimited
from hhsync.errors import ConfigError, HhsyncError, UsageError
from hhsync.fanout import run_children
from hhsync.kube.source import Source
from hhsync.logs import redact, setup_logging
from hhsync.mirror import Options, Outcome
from hhsync.netbox import branches
from hhsync.netbox.client import NetBox, display_url
from hhsync.netbox.site import read_states
from hhsync.report import PLAN_COLUMNS, outcome_json, plan_document, plan_rows
from hhsync.run import run_fabric
from hhsync.status import COLUMNS as STATUS_COLUMNS
from hhsync.status import in_sync as all_in_sync
from hhsync.status import rows as status_rows
from hhsync.systemd import next_runs

app = typer.Typer(
    help="Keep NetBox an exact, current mirror of Hedgehog fabrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[run] parallel" is a config section, not markup
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

    def override(self, **changes: Any) -> Config:
        """The config with some sections replaced by command-line options."""
        self._config = replace(self.config(), **changes)
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
        self.err.print(redact(f"hhsync: error: {error}"), markup=False)
        if self.verbose:
            self.err.print(redact("".join(traceback.format_exception(error))), markup=False)
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


@app.command()
def sync(
    ctx: typer.Context,
    fabrics: Annotated[list[str] | None, typer.Argument(help="Fabrics to sync.")] = None,
    all_fabrics: Annotated[
        bool, typer.Option("--all", help="Every enabled fabric, several at once.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Sync even a fresh fabric.")] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Compare everything, even when the fabric is unchanged."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    plan_out: Annotated[
        str | None,
        typer.Option(
            "--plan-out",
            metavar="FILE",
            help="With --dry-run: save the plan as JSON for `hhsync apply` (- for stdout).",
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            metavar="MODE",
            help="This run writes to main (off), into a branch to review, or a branch it "
            "merges (merge), whatever the fabric's `branch` says.",
        ),
    ] = None,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete", help="Apply a plan deleting more than max_delete_fraction."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="Write Prometheus metrics here ([run] metrics_file)."),
    ] = None,
) -> None:
    """Mirror fabrics into NetBox: skip fresh ones, discover, plan, apply, record the result."""
    cli: Cli = ctx.obj
    with cli.errors():
        config = cli.config()
        if metrics_file is not None:
            config = cli.override(run=replace(config.run, metrics_file=metrics_file.absolute()))
        targets = _targets(cli, fabrics, all_fabrics)
        if branch is not None and branch not in BRANCH_MODES:
            raise UsageError(f"--branch {branch}: expected one of {', '.join(BRANCH_MODES)}")
        if plan_out is not None and (not dry_run or len(targets) != 1 or all_fabrics):
            raise UsageError("--plan-out saves the plan of a --dry-run of one fabric")
        _require_branching(cli, targets, branch, dry_run)
        if len(targets) == 1 and not all_fabrics:
            options = Options(
                dry_run=dry_run, full=full, allow_mass_delete=allow_mass_delete, branch=branch
            )
            outcome = _run_here(cli, targets[0], force, options)
            reports = [outcome_json(outcome)]
            if plan_out is not None and outcome.plan is not None:
                _save_plan(outcome, plan_out, cli.out)
            elif dry_run and outcome.plan is not None and not as_json:
                table(cli.out, PLAN_COLUMNS, plan_rows(outcome.plan))
        else:
            reports = run_children(config, targets, _child_argv(ctx), cli.verbose)
    _report(cli, reports, as_json, to_stderr=plan_out == "-")


@app.command()
def apply(
    ctx: typer.Context,
    plan_file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A plan saved by sync --dry-run --plan-out.")
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="When the fabric or NetBox moved since the plan, apply what is still valid.",
        ),
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete", help="Apply a plan deleting more than max_delete_fraction."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Apply a saved plan, exactly, if the fabric and NetBox are still as it saw them."""
    cli: Cli = ctx.obj
    with cli.errors():
        config = cli.config()
        saved = planfile.load(plan_file)
        fabric = config.fabrics.get(saved.fabric)
        if fabric is None:
            raise ConfigError(
                f"{plan_file}: the plan is for fabric {saved.fabric}, which {config.path} "
                "does not configure"
            )
        if saved.netbox != display_url(config.netbox.url):
            raise ConfigError(
                f"{plan_file}: the plan was made against NetBox at {saved.netbox}; "
                f"{config.path} points at {display_url(config.netbox.url)}"
            )
        options = Options(allow_mass_delete=allow_mass_delete, saved=saved, partial=force)
        outcome = _run_here(cli, fabric, True, options)
    _report(cli, [outcome_json(outcome)], as_json)


def _report(
    cli: Cli, reports: list[dict[str, Any]], as_json: bool, *, to_stderr: bool = False
) -> NoReturn:
    """Print each fabric's report (or all as JSON) and exit with the runs' code."""
    if as_json:
        print_json(cli.err if to_stderr else cli.out, {"fabrics": reports})
    else:
        for report in reports:
            _warn(cli, report)
            (cli.err if to_stderr else cli.out).print(report["summary"], markup=False)
    results = {r["result"] for r in reports}
    raise typer.Exit(1 if "error" in results else 3 if "busy" in results else 0)


def _save_plan(outcome: Outcome, where: str, out: Console) -> None:
    text = json.dumps(plan_document(outcome), indent=2, sort_keys=True) + "\n"
    if where == "-":
        out.out(text, highlight=False, end="")
        return
    try:
        Path(where).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--plan-out {where}: cannot write the plan: {e.strerror}") from None


def _require_branching(
    cli: Cli, targets: list[FabricConfig], override: str | None, dry_run: bool
) -> None:
    """A run that is to write into a branch needs NetBox's branching plugin: never fall back
    to main without it."""
    wanting = [f for f in targets if (override or f.branch) != "off"]
    if dry_run or not wanting:
        return
    netbox = cli.netbox()
    try:
        if branches.plugin_version(netbox, unlimited()) is not None:
            return
    finally:
        netbox.close()
    where = (
        f"--branch {override}"
        if override
        else f'{cli.config().path}: [fabrics.{wanting[0].name}] branch = "{wanting[0].branch}"'
    )
    raise ConfigError(
        f"{where}: NetBox at {display_url(cli.config().netbox.url)} does not run the "
        'netbox-branching plugin; install it, or set branch = "off" to write to main'
    )


NOT_FORWARDED = {"fabrics", "all_fabrics", "as_json"}  # each child gets its own name and --json


def _child_argv(ctx: typer.Context) -> list[str]:
    """The options of this `sync` as a child's arguments: every option that is not at its
    default, so a new option reaches the children without being listed twice."""
    argv: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in NOT_FORWARDED or value == param.default or value is None:
            continue
        flag = param.opts[0]
        if getattr(param, "is_flag", False):
            argv.append(flag)
        else:
            argv += [flag, str(value.absolute() if isinstance(value, Path) else value)]
    return argv


def _warn(cli: Cli, report: dict[str, Any]) -> None:
    if cli.quiet:
        return
    fabric = report["fabric"]
    lines = [f"skipped {s}" for s in report["skipped"]]
    lines += [f"conflict: {c}" for c in report["conflicts"]]
    lines += [f"cabling mismatch: {m}" for m in report["mismatches"]]
    lines += [f"failed: {f}" for f in report["failures"]] + report["warnings"]
    for line in lines:
        cli.err.print(f"hhsync: warning: {fabric}: {line}", markup=False)


def _run_here(cli: Cli, fabric: FabricConfig, force: bool, options: Options) -> Outcome:
    """One fabric in this process, with a progress bar on a terminal."""
    bar = Progress(console=cli.err, transient=True, disable=not cli.err.is_terminal or cli.quiet)
    task = bar.add_task(fabric.name, total=None)
    with bar:
        return run_fabric(
            fabric,
            cli.config(),
            cli.netbox,
            open_source,
            clock=lambda: datetime.now(UTC),
            force=force,
            options=options,
            progress=lambda advance, total: bar.update(task, total=total, advance=advance),
        )


def _targets(cli: Cli, names: list[str] | None, all_fabrics: bool) -> list[FabricConfig]:
    if bool(names) == all_fabrics:
        raise UsageError("name one or more fabrics, or pass --all")
    if all_fabrics:
        return [f for f in cli.config().fabrics.values() if f.enabled]
    return cli.fabrics(names)


@app.command()
def status(
    ctx: typer.Context,
    fabrics: Annotated[
        list[str] | None, typer.Argument(help="Fabrics to show (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless every enabled fabric is in sync.")
    ] = False,
) -> None:
    """Show each fabric's sync state, as NetBox stores it."""
    cli: Cli = ctx.obj
    with cli.errors():
        chosen = cli.fabrics(fabrics)
        netbox = cli.netbox()
    try:
        stored = read_states(netbox, [f.site for f in chosen], unlimited())
        error = None
    except HhsyncError as e:
        stored, error = {}, str(e)
    finally:
        netbox.close()
    if error is not None:  # every row says so: a status without state must not look calm
        if as_json:
            print_json(
                cli.out,
                {
                    "ok": False,
                    "error": error,
                    "fabrics": [
                        {"fabric": f.name, "site": f.site, "state": "unknown"} for f in chosen
                    ],
                },
            )
        else:
            for fabric in chosen:
                cli.out.print(f"{fabric.name}: NetBox unreachable: {error}", markup=False)
        raise typer.Exit(1)
    found = status_rows(
        chosen, {site: s for site, (_, s) in stored.items()}, datetime.now(UTC), next_runs()
    )
    if as_json:
        print_json(cli.out, {"ok": True, "fabrics": [r.as_json() for r in found]})
    else:
        table(cli.out, STATUS_COLUMNS, [r.cells() for r in found])
    raise typer.Exit(1 if check and not all_in_sync(found) else 0)


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
        print(redact(f"hhsync: error: {e}"), file=sys.stderr)
        sys.exit(e.exit_code)
    except Exception:  # a bug: its traceback, without the secrets it may quote
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        sys.exit(1)
