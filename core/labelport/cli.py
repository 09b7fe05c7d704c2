"""The ``labelport`` command: a thin layer over :func:`labelport.export` and the plugin registry."""

from __future__ import annotations

import json
import os
import sys
import time
import typing
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import click

from ._version import __version__
from .errors import LabelportError, OptionError, PluginError
from .loading import load

if typing.TYPE_CHECKING:
    from .pipeline import ExportReport, TaskDone
    from .plugins import Registry

# what every command needs is imported here; the pipeline, the sources and the plugins when a command runs, so
# that `labelport --version` and `--help` start fast
REDBRICK_PREFIX = "redbrick:"  # labelport.sources.REDBRICK_PREFIX (a test keeps the two equal)
PLUGINS_ENV = "LABELPORT_PLUGINS"  # labelport.plugins.PLUGINS_ENV
SEARCHES = ("ALL", "GROUNDTRUTH", "UNASSIGNED", "QUEUED", "DRAFT", "SKIPPED", "COMPLETED", "FAILED", "ISSUES")

__all__ = ["main"]


def _registry(show_warnings: bool = True) -> Registry:
    """The plugin registry; its loading warnings become one plain line each on stderr."""
    from .plugins import Registry
    from .warned import caught_warnings

    with caught_warnings() as caught:
        registry = Registry()
    for message in dict.fromkeys(str(w.message) for w in caught) if show_warnings else ():
        click.echo(f"warning: {message.removeprefix('labelport: ')}", err=True)
    return registry


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return "|".join(map(str, typing.get_args(kind)))
    return str(getattr(kind, "__name__", kind)).replace("typing.", "")


def _complete_writers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of writer names; after a comma, of the next name in a ``--writer a,b`` list."""
    from click.shell_completion import CompletionItem

    head, _, tail = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [CompletionItem(prefix + w.name, help=w.spec.description)
            for w in _registry(show_warnings=False).writers() if w.name.startswith(tail)]


def _complete_opts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of ``--opt WRITER.KEY=`` (the writers chosen so far first), and of Literal values."""
    from click.shell_completion import CompletionItem

    chosen = {n.strip() for item in ctx.params.get("writers") or () for n in item.split(",")}
    items = []
    for info in sorted(_registry(show_warnings=False).writers(), key=lambda w: w.name not in chosen):
        defaults, helps = info.spec.option_defaults(), info.spec.option_help()
        for key, kind in info.spec.option_types().items():
            stem = f"{info.name}.{key}="
            if incomplete.startswith(stem) and typing.get_origin(kind) is typing.Literal:
                items += [CompletionItem(f"{stem}{v}") for v in typing.get_args(kind)
                          if f"{stem}{v}".startswith(incomplete)]
            elif stem.startswith(incomplete):
                items.append(CompletionItem(stem, help=helps.get(key) or f"default: {defaults[key]}"))
    return items


class _ExportCommand(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = ", ".join(w.name for w in _registry().writers())
        with formatter.section("Writers"):
            formatter.write_text(f"{names}. `labelport writers` describes them and their options.")


def _export_folder(path: str) -> str:
    """An export folder named on the command line; a missing one is a usage error (exit 2)."""
    if not os.path.isdir(path):
        raise OptionError(f"SOURCE {path!r}: export folder not found")
    return path


def _parse_opts(values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        writer, dot, name = key.partition(".")
        if not sep or not dot or not writer or not name:
            raise OptionError(f"--opt {item!r}: expected WRITER.KEY=VALUE, e.g. nifti.compresslevel=2")
        options.setdefault(writer, {})[name] = value
    return options


#: exit codes: 1 when the command ran and something failed (tasks, unreadable input), 2 when the command line is
#: wrong (as click's own usage errors), 130 when interrupted (Ctrl-C or SIGTERM)
FAILED, USAGE, INTERRUPTED = 1, 2, 130


def _debug_option(command: Any) -> Any:
    """``--debug`` on the group and on every command, so that it works before or after the command name."""

    def remember(ctx: click.Context, _: Any, value: bool) -> bool:
        if value:
            ctx.ensure_object(dict)["debug"] = True
            root = ctx.find_root()
            root.ensure_object(dict)["debug"] = True
            _debug_logging()
        return value

    return click.option("--debug", is_flag=True, expose_value=False, callback=remember, is_eager=True,
                        help="Show tracebacks (a writer's too) and debug logging.")(command)


def _root_flag(key: str, *decls: str, help: str) -> Callable[[Any], Any]:
    """A flag of the group that each command also takes (before or after the command name), kept in the root
    context's ``obj[key]``."""

    def remember(ctx: click.Context, _: Any, value: bool) -> bool:
        if value:
            ctx.find_root().ensure_object(dict)[key] = True
        return value

    return click.option(*decls, is_flag=True, expose_value=False, callback=remember, help=help)


_quiet_option = _root_flag("quiet", "-q", "--quiet", help="No progress bar and no summary unless something failed.")
_verbose_option = _root_flag("verbose", "-v", "--verbose",
                             help="One line per task: what each writer did with it (instead of a progress bar).")


def _plugin_option(command: Any) -> Any:
    """``-p/--plugin module[:object]``: a plugin without packaging (added to LABELPORT_PLUGINS, which worker
    processes read too)."""

    def remember(ctx: click.Context, _: Any, values: tuple[str, ...]) -> tuple[str, ...]:
        if values:
            named = [s for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]
            os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys([*named, *values]))
        return values

    return click.option("-p", "--plugin", "plugins", multiple=True, expose_value=False, callback=remember,
                        is_eager=True, metavar="MODULE[:OBJECT]",
                        help="Load a plugin that is not installed as a package (repeatable; env LABELPORT_PLUGINS)."
                        )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labelport")
@_debug_option
@_quiet_option
@_verbose_option
@_plugin_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Export medical-imaging annotation projects (RedBrick AI style) through writer plugins.

    Exit codes: 0 done, 1 something failed (a task, unreadable input), 2 wrong command line, 130 interrupted.
    """
    ctx.ensure_object(dict).setdefault("debug", False)


def _debug_logging() -> None:
    """``--debug``: every log record, with its level and logger, on stderr. Without it logging is left as
    Python has it (warnings and errors on stderr), and a re-run that finds nothing changed does not load it."""
    import logging

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("nibabel.global").propagate = False  # nibabel prints its warnings itself: once is enough


def _redbrick_options(command: Any) -> Any:
    """--api-url, --profile and --ca-bundle, shared by every command that talks to RedBrick."""
    for option in reversed([
        click.option("--api-url", envvar="REDBRICK_URL", metavar="URL",
                     help="RedBrick's API: its base URL (as the RedBrick CLI stores it) or GraphQL endpoint "
                          "[default: the profile's, else RedBrick's; env REDBRICK_URL]."),
        click.option("--profile", metavar="NAME", help="RedBrick CLI profile for the key, org and URL "
                     "[default: REDBRICK_PROFILE, else the CLI's default profile]."),
        click.option("--ca-bundle", type=click.Path(dir_okay=False), metavar="FILE",
                     help="CA certificates to check RedBrick's TLS certificate with (env REQUESTS_CA_BUNDLE)."),
    ]):
        command = option(command)
    return command


def _warn_tls(project: Any) -> None:
    for warning in getattr(project, "warnings", []):
        click.echo(f"warning: {warning}", err=True)


def _open_project(location: str, **kwargs: Any) -> Any:
    from .sources import redbrick_project

    project = redbrick_project(location, **kwargs)
    _warn_tls(project)
    return project


@cli.command(cls=_ExportCommand)
@click.argument("source")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("-w", "--writer", "writers", multiple=True, required=True, metavar="NAME",
              shell_complete=_complete_writers,
              help="Writer to run (repeatable). One writer writes into OUT, several into OUT/<writer>/.")
@click.option("--opt", "opts", multiple=True, metavar="WRITER.KEY=VALUE", shell_complete=_complete_opts,
              help="A writer option (repeatable).")
@click.option("--task-id", "task_ids", multiple=True, metavar="ID", help="Only this task (repeatable).")
@click.option("--stage", metavar="NAME", help="Only tasks currently in this stage.")
@click.option("--only-ground-truth", is_flag=True, help="Only tasks in the END stage.")
@click.option("--taxonomy", type=click.Path(dir_okay=False, exists=True),
              help="Taxonomy JSON (default: SOURCE/taxonomy.json, else derived from the tasks).")
@click.option("--since", metavar="TIME",
              help="RedBrick projects: only tasks updated at or after TIME (ISO 8601 with a zone, or a date).")
@_redbrick_options
@click.option("--unknown-labels", type=click.Choice(["error", "warn"]), default="error", show_default=True,
              help="A voxel value missing from the segmentMap fails its task, or only warns.")
@click.option("--images", type=click.Choice(["reference", "copy", "link"]), default="reference", show_default=True,
              help="The written items point at SOURCE's image files, or at copies or hard links of them in OUT.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: one per core].")
@click.option("--scheduler", metavar="ADDRESS|local:N",
              help="Run the tasks on a Dask cluster: a scheduler address (tcp://HOST:8786), or local:N for a local "
                   "cluster of N processes. Workers must see SOURCE and OUT at the same paths.")
@click.option("--force", is_flag=True, help="Rewrite every task, even those unchanged since the last export.")
@click.option("--report", "review", is_flag=True, help="Then write OUT/report/index.html (see `labelport report`).")
@click.option("--dry-run", is_flag=True, help="Write nothing: show what would be written, left unchanged or removed.")
@click.option("--task-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop a task that runs longer and report it [default: no limit].")
@click.option("--max-label-memory", default="4GiB", show_default=True, metavar="SIZE",
              help="Memory one task's label maps may take (e.g. 512MiB, 8GiB; 0 for no limit).")
@click.option("--allow-outside-paths", is_flag=True,
              help="Read paths in tasks.json that lead outside SOURCE (only for an export you trust).")
@_quiet_option
@_verbose_option
@_debug_option
@_plugin_option
@click.pass_context
def export_command(
    ctx: click.Context, source: str, out: str, writers: tuple[str, ...], opts: tuple[str, ...],
    task_ids: tuple[str, ...], stage: str | None, only_ground_truth: bool, taxonomy: str | None,
    since: str | None, api_url: str | None, profile: str | None, ca_bundle: str | None, unknown_labels: str,
    images: str, workers: int | None, scheduler: str | None, force: bool, review: bool, dry_run: bool,
    task_timeout: float | None,
    max_label_memory: str, allow_outside_paths: bool,
) -> None:
    """Export SOURCE into OUT. SOURCE is a RedBrick export folder, or redbrick:ORG_ID/PROJECT_ID for a live
    project (API key from REDBRICK_API_KEY or the RedBrick CLI's credentials).

    Exporting again into the same OUT rewrites only the tasks whose inputs or writer options changed,
    removes the outputs of tasks that left SOURCE, and resumes an interrupted export.
    """
    load("labelport.pipeline", "labelport.sources")  # (with the garbage collector paused: see labelport.loading)
    from .pipeline import export
    from .sources import TaskFilter, redbrick_project

    debug, quiet, verbose = (ctx.obj.get(flag, False) for flag in ("debug", "quiet", "verbose"))
    bar: Any = None
    writers = tuple(name.strip() for item in writers for name in item.split(",") if name.strip())

    failures = 0
    started = last_line = time.monotonic()

    def progress(done: int, total: int | None, failed: bool) -> None:
        nonlocal failures, last_line
        failures += failed
        if bar is not None:
            if total is not None and bar.length != total:
                bar.length = total
            if failed:
                bar.label = f"exporting ({failures} failed)"
            bar.update(1)
            return
        now = time.monotonic()
        if now - last_line >= 2.0 or done == total:  # plain lines for logs, not one per task
            last_line = now
            eta = f", about {(now - started) / done * (total - done):.0f} s left" if total and done < total else ""
            click.echo(f"{done}/{total if total is not None else '?'} tasks, {failures} failed{eta}", err=True)

    try:
        options = _parse_opts(opts)
        memory = _size(max_label_memory)
        filters: dict[str, Any] = {"task_ids": task_ids, "stage": stage, "only_ground_truth": only_ground_truth}
        target: Any = source
        if source.startswith(REDBRICK_PREFIX):
            if allow_outside_paths:
                raise OptionError("--allow-outside-paths is for export folders")
            target = redbrick_project(source, url=api_url, since=since, task_filter=TaskFilter.of(**filters),
                                      profile=profile, ca_bundle=ca_bundle)
            _warn_tls(target)
            filters = {}
        elif since or api_url or profile or ca_bundle:
            raise OptionError("--since, --api-url, --profile and --ca-bundle are for redbrick:ORG_ID/PROJECT_ID "
                              "sources")
        else:
            _export_folder(source)
            filters["allow_outside_paths"] = allow_outside_paths
        registry = _registry()
        show_bar = not quiet and not verbose and sys.stderr.isatty()
        with click.progressbar(length=1, label="exporting", file=sys.stderr, show_eta=True,
                               show_pos=True) if show_bar else nullcontext() as bar_:
            bar = bar_
            report = export(
                target, out, list(writers), options=options, **filters, taxonomy=taxonomy,
                unknown_labels=unknown_labels, images=images,  # type: ignore[arg-type]
                registry=registry, progress=None if quiet or verbose else progress,
                on_task=_task_line if verbose else None,
                workers=workers or os.cpu_count() or 1, force=force, task_timeout=task_timeout,
                max_label_memory=memory, dry_run=dry_run, scheduler=scheduler,
            )
    except LabelportError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE if isinstance(exc, OptionError) else FAILED)
    except OSError as exc:  # the output folder itself: disk full, read-only, gone
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted: what was exported so far is kept; the next export resumes", err=True)
        sys.exit(INTERRUPTED)
    _summary(report, quiet, debug)
    if review and not dry_run:
        _write_review(out, quiet, debug, workers or os.cpu_count() or 1)
    if not report.ok:
        sys.exit(FAILED)


def _write_review(out: str, quiet: bool, debug: bool, workers: int) -> None:
    from .review import write_report

    try:
        summary = write_report(out, workers=workers)
    except Exception as exc:  # the export is done and kept; only its page failed
        if debug:
            raise
        click.echo(f"error: the review page could not be written: {type(exc).__name__}: {exc}", err=True)
        sys.exit(FAILED)
    for problem in summary.problems:
        click.echo(f"warning: {problem}", err=True)
    if not quiet:
        click.echo(f"review page: {summary.index} ({summary.tasks} task(s), {summary.pictures} pictures)")


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
          "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4, "tb": 1000**4, "tib": 1 << 40}


def _size(text: str) -> int | None:
    """``--max-label-memory``: bytes, or a number with a unit (512MiB, 8GiB, 2GB); 0 is no limit."""
    import re

    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not found or found.group(2).lower() not in _UNITS:
        raise OptionError(f"--max-label-memory {text!r}: expected a size such as 512MiB or 8GiB")
    value = int(float(found.group(1)) * _UNITS[found.group(2).lower()])
    return value or None


def _task_line(task: TaskDone) -> None:
    """``-v``: what happened to one task, e.g. ``Case 001: written nifti, png; unchanged mhd``."""
    parts = [f"{what} {', '.join(names)}" for what, names in
             (("written", task.written), ("unchanged", task.unchanged), ("failed", task.failed)) if names]
    click.echo(f"{task.name}: {'; '.join(parts) or 'nothing to do'}")  # why it failed: in the summary


def _summary(report: ExportReport, quiet: bool, debug: bool) -> None:
    for warning in report.warnings if not quiet or not report.ok else ():
        click.echo(f"warning: {warning}", err=True)
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
        if debug and failure.detail:
            click.echo(failure.detail, err=True)
    if quiet and report.ok:
        return
    for name, written in report.written.items():
        kept, removed = report.unchanged[name], report.removed[name]
        if report.dry_run:
            click.echo(f"{name}: {written} to write, {kept} unchanged, {removed} to remove -> {report.roots[name]}")
            continue
        files = report.removed_files.get(name, 0)
        gone = f" ({files} file(s) deleted)" if files else ""
        click.echo(f"{name}: {written} written, {kept} unchanged, {removed} removed{gone} -> {report.roots[name]}",
                   err=not report.ok)
    steps = f", {report.failed_steps} project step(s) failed" if report.failed_steps else ""
    steps += " (dry run: nothing was written)" if report.dry_run else ""
    click.echo(f"{report.tasks_seen} task(s) read, {report.failed_tasks} failed{steps}, in {report.seconds:.1f} s",
               err=not report.ok)


def _print_records(ctx: click.Context, records: Any) -> None:
    """Print records as NDJSON, one line each; a LabelportError ends the command with one line and code 1."""
    try:
        for record in records():
            click.echo(json.dumps(record))
    except LabelportError as exc:
        if ctx.obj.get("debug"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE if isinstance(exc, OptionError) else FAILED)


_project_argument = click.argument("project", metavar="redbrick:ORG_ID/PROJECT_ID")
_project_or_folder = click.argument("project", metavar="redbrick:ORG_ID/PROJECT_ID|FOLDER")


@cli.command("active-time")
@_debug_option
@_project_argument
@click.option("--stage", required=True, metavar="NAME", help="The stage whose time is reported.")
@click.option("--task-id", metavar="ID", help="Only this task.")
@_redbrick_options
@click.pass_context
def active_time_command(ctx: click.Context, project: str, stage: str, task_id: str | None, api_url: str | None,
                        profile: str | None, ca_bundle: str | None) -> None:
    """Time spent per task and user in a stage of a RedBrick project, as NDJSON (RedBrick SDK records)."""
    _print_records(ctx, lambda: _open_project(project, url=api_url, profile=profile, ca_bundle=ca_bundle)
                   .active_time(stage, task_id))


@cli.command("events")
@_debug_option
@_project_or_folder
@click.option("--task-id", "task_ids", multiple=True, metavar="ID", help="Only this task (repeatable).")
@click.option("--only-ground-truth", is_flag=True, help="Only tasks in the END stage.")
@click.option("--since", metavar="TIME", help="Only tasks updated at or after TIME (ISO 8601 with a zone, or a date).")
@_redbrick_options
@click.pass_context
def events_command(ctx: click.Context, project: str, task_ids: tuple[str, ...], only_ground_truth: bool,
                   since: str | None, api_url: str | None, profile: str | None, ca_bundle: str | None) -> None:
    """The audit trail of a RedBrick project: one NDJSON record per task, {taskId, taskName,
    currentStageName, events}, as RedBrick's SDK reports it (all tasks, unless --only-ground-truth).

    For an export folder, the trail RedBrick's CLI saved there (`redbrick report` writes report-<time>.json;
    the newest is read).
    """
    from .sources import LocalExport, TaskFilter

    task_filter = TaskFilter.of(task_ids, only_ground_truth=only_ground_truth)
    if not project.startswith(REDBRICK_PREFIX):
        def local() -> Any:
            if api_url or profile or ca_bundle:
                raise OptionError("--api-url, --profile and --ca-bundle are for redbrick:ORG_ID/PROJECT_ID projects")
            folder = LocalExport(_export_folder(project), task_filter=task_filter)
            yield from folder.events(since)
            for warning in folder.warnings:
                click.echo(f"warning: {warning}", err=True)

        _print_records(ctx, local)
        return
    _print_records(ctx, lambda: _open_project(project, url=api_url, since=since, task_filter=task_filter,
                                              profile=profile, ca_bundle=ca_bundle).events())


@cli.command("tasks")
@_debug_option
@_project_or_folder
@click.option("--search", type=click.Choice(SEARCHES, case_sensitive=False),
              help="Which tasks, as RedBrick's SDK names the task lists [default: ALL; with --stage, QUEUED; "
                   "with --completed-from/--completed-to, COMPLETED].")
@click.option("--stage", metavar="NAME", help="The stage to search [default: the project's first stage].")
@click.option("--name", metavar="TEXT", help="Task names starting with TEXT.")
@click.option("--exact", is_flag=True, help="With --name: the whole name only.")
@click.option("--task-id", metavar="ID", help="Only this task.")
@click.option("--user-id", metavar="ID", help="Only tasks assigned to (or completed by) this user id or e-mail.")
@click.option("--completed-from", metavar="TIME", help="With --search COMPLETED: completed at or after TIME.")
@click.option("--completed-to", metavar="TIME", help="With --search COMPLETED: completed at or before TIME.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many tasks.")
@_redbrick_options
@click.pass_context
def tasks_command(ctx: click.Context, project: str, search: str | None, stage: str | None, name: str | None,
                  exact: bool, task_id: str | None, user_id: str | None, completed_from: str | None,
                  completed_to: str | None, limit: int | None, api_url: str | None, profile: str | None,
                  ca_bundle: str | None) -> None:
    """List the tasks of a RedBrick project (or of an export folder) as NDJSON (RedBrick SDK listing records)."""
    from .sources import LocalExport

    if not project.startswith(REDBRICK_PREFIX):
        def local() -> Any:
            if user_id or completed_from or completed_to or api_url or profile or ca_bundle:
                raise OptionError("--user-id, --completed-from/--completed-to, --api-url, --profile and "
                                  "--ca-bundle are for redbrick:ORG_ID/PROJECT_ID projects")
            return LocalExport(_export_folder(project)).list_tasks(search, stage=stage, name=name, exact_match=exact,
                                                    task_id=task_id, limit=limit)

        _print_records(ctx, local)
        return
    _print_records(ctx, lambda: _open_project(project, url=api_url, profile=profile, ca_bundle=ca_bundle).list_tasks(
        search, stage=stage, name=name, exact_match=exact, task_id=task_id, user_id=user_id,
        completed_at=(completed_from, completed_to), limit=limit))


@cli.command("writers")
@_debug_option
@_plugin_option
@click.argument("name", required=False, shell_complete=_complete_writers)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def writers_command(name: str | None, as_json: bool) -> None:
    """List the installed writers, their packages and options, and plugins that failed to load; with NAME, the
    full documentation of one writer."""
    registry = _registry(show_warnings=False)  # broken plugins and conflicts are listed below
    infos = registry.writers()
    if name is not None:
        try:
            infos = [registry.writer(name)]
        except PluginError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USAGE)
    rows: list[dict[str, Any]] = []
    for info in infos:
        spec = info.spec
        rows.append({
            "name": spec.name, "description": spec.description, "package": info.plugin.package,
            "version": info.plugin.version, "options": {k: _type_name(v) for k, v in spec.option_types().items()},
            "defaults": spec.option_defaults(), "help": spec.option_help(),
            "missing": spec.missing(),
        })
        if name is not None:
            import inspect

            rows[-1]["docs"] = inspect.getdoc(sys.modules.get(spec.write.__module__)) or ""
    broken = [{"plugin": b.name, "package": b.package, "version": b.version, "error": b.error}
              for b in registry.broken] if name is None else []
    conflicts = [registry.conflict_message(n) for n in registry.conflicts] if name is None else []
    if as_json:
        click.echo(json.dumps({"writers": rows, "broken": broken, "conflicts": conflicts}, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        origin = f"{r['package']} {r['version']}".strip()
        click.echo(f"{r['name']:<{width}}  {r['description']}  [{origin}]")
        if r.get("docs"):
            click.echo("\n" + r["docs"] + "\n\nOptions:" * bool(r["options"]))
        for key, kind in r["options"].items():
            default = json.dumps(r["defaults"][key]) if r["defaults"][key] in ("", None) else r["defaults"][key]
            help_text = f"  {r['help'][key]}" if key in r["help"] else ""
            click.echo(f"{'':<{width}}  --opt {r['name']}.{key}=<{kind}> [default: {default}]{help_text}")
        if r["missing"]:
            click.echo(f"{'':<{width}}  missing: {', '.join(r['missing'])} "
                       f"(pip install {' '.join(r['missing'])})")
    for b in broken:
        click.echo(f"broken plugin {b['plugin']!r} from package {b['package']!r}: {b['error']}")
    for message in conflicts:
        click.echo(f"conflict: {message}")


@cli.command("report")
@_debug_option
@_quiet_option
@click.argument("out", type=click.Path(file_okay=False, exists=True))
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Processes that read and picture the tasks [default: one per core].")
@click.pass_context
def report_command(ctx: click.Context, out: str, workers: int | None) -> None:
    """Write OUT/report/index.html: what each writer folder in OUT holds, read back from its files. Per task,
    series and class three orthogonal slices through the class's centroid with the labels over the image,
    direction letters and slice positions; per class instances and volumes across tasks; the last export's
    failures and options. Self-contained and offline: open it in a browser."""
    from .review.page import writer_roots

    if not writer_roots(out):
        click.echo(f"error: {out} holds no export (no tasks.json in it or in its folders)", err=True)
        sys.exit(USAGE)
    _write_review(out, ctx.obj.get("quiet", False), ctx.obj.get("debug", False), workers or os.cpu_count() or 1)


@cli.command("new-writer")
@_debug_option
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where to create the package folder labelport-NAME.")
def new_writer_command(name: str, parent: str) -> None:
    """Create a pip-installable writer plugin package: the entry point, an options dataclass, a working write
    function, a test that runs labelport's writer contract, and a CI workflow."""
    from .newwriter import new_writer

    try:
        folder = new_writer(name, parent)
    except OptionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE)
    click.echo(f"created {folder}: pip install -e '{folder}[test]', then `labelport writers {name}` and "
               f"`pytest {folder}`")


def main() -> None:
    try:
        cli(prog_name="labelport")
    except KeyboardInterrupt:  # outside an export (which reports it itself)
        sys.exit(INTERRUPTED)
    finally:
        # The command is done. The garbage collections at interpreter exit need not look through every object it
        # loaded (they took 12 of the 130 ms of a no-op re-run of 1,000 tasks); everything it wrote is closed by
        # now, and the atexit handlers and the flush of stdout and stderr still run.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
