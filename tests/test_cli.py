"""The command line, and the README's examples (run as written)."""

from __future__ import annotations

import ast
import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import labelport
from labelport.cli import cli
from labelport.plugins import BUILTIN_WRITERS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labelport", *args], capture_output=True, text=True,
                          timeout=120)


def test_version_and_help() -> None:
    assert _run("--version").stdout.strip() == f"labelport, version {labelport.__version__}"
    text = _run("--help").stdout
    assert "export" in text and "writers" in text
    export_help = _run("export", "--help").stdout
    assert "--writer" in export_help and "nifti" in export_help.split("Writers")[-1]


def test_the_command_ends_with_its_atexit_handlers_and_whole_output(tmp_path: Path) -> None:
    """``labelport`` leaves the objects it loaded to the end of the process (gc.freeze) but still runs the atexit
    handlers of the libraries and plugins it loaded, and flushes everything it printed."""
    (tmp_path / "leaves_a_note.py").write_text(
        "import atexit\nimport labelport\n\n"
        "atexit.register(lambda: open('atexit-ran', 'w').write('yes'))\n\n\n"
        "@labelport.hookimpl\ndef register_writers():\n    return []\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "labelport", "-p", "leaves_a_note", "writers", "--json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)["writers"]) == len(BUILTIN_WRITERS)
    assert (tmp_path / "atexit-ran").read_text() == "yes"


def test_summary_and_quiet(demo: Path, tmp_path: Path) -> None:
    run = _run("export", str(demo), "-o", str(tmp_path / "a"), "--writer", "nifti")
    assert run.returncode == 0
    assert "nifti: 4 written, 0 unchanged, 0 removed" in run.stdout
    assert "4 task(s) read, 0 failed" in run.stdout
    quiet = _run("export", str(demo), "-o", str(tmp_path / "b"), "--writer", "nifti", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_filters(demo: Path, tmp_path: Path) -> None:
    run = _run("export", str(demo), "-o", str(tmp_path / "gt"), "--writer", "nifti", "--only-ground-truth")
    assert run.returncode == 0
    names = [t["name"] for t in json.loads((tmp_path / "gt" / "tasks.json").read_text())]
    assert names == ["Patient 001", "Patient 002", "Patient 004"]
    run = _run("export", str(demo), "-o", str(tmp_path / "id"), "--writer", "nifti",
               "--task-id", "00000000-0000-4000-8000-000000000001", "--task-id", "00000000-0000-4000-8000-000000000003")
    names = [t["name"] for t in json.loads((tmp_path / "id" / "tasks.json").read_text())]
    assert names == ["Patient 001", "Patient 003"]


def test_option_errors(demo: Path, tmp_path: Path) -> None:
    for opt, message in [("nifti", "expected WRITER.KEY=VALUE"), ("nifti.level=1", "has no option 'level'"),
                         ("nifti.compresslevel=fast", "expected int")]:
        run = _run("export", str(demo), "-o", str(tmp_path / "o"), "--writer", "nifti", "--opt", opt)
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    run = _run("export", str(demo), "-o", str(tmp_path / "o"), "--writer", "nope")
    assert run.returncode == 2 and "unknown writer 'nope'" in run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--writer", "nifty"], "unknown writer 'nifty' (did you mean 'nifti'?)"),
    (["--writer", "nifti", "--opt", "nifti.compreslevel=1"],
     "no option 'compreslevel' (did you mean 'compresslevel'?)"),
    (["--writer", "nifti", "--stage", "review_1"], "no task is in stage 'review_1' (did you mean 'Review_1'?)"),
    (["--writer", "nifti", "--stage", "Reveiw_1"], "(the stages: END, Review_1)"),
])
def test_typos_are_usage_errors_with_a_suggestion(demo: Path, tmp_path: Path, args: list[str], message: str) -> None:
    run = _run("export", str(demo), "-o", str(tmp_path / "o"), *args)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert not (tmp_path / "o").exists(), "nothing is written for a wrong command line"


def test_exit_codes_and_flags_anywhere(demo: Path, tmp_path: Path) -> None:
    both = _run("export", str(demo), "-o", str(tmp_path / "two"), "--writer", "nifti,png", "--debug")
    assert both.returncode == 0 and {p.name for p in (tmp_path / "two").iterdir()} >= {"nifti", "png"}
    quiet = _run("-q", "export", str(demo), "-o", str(tmp_path / "q"), "--writer", "nifti")
    assert quiet.returncode == 0 and quiet.stdout == quiet.stderr == ""
    (demo / "segmentations/Patient 001/CT.nii.gz").write_bytes(b"\x1f\x8b broken")
    failed = _run("export", str(demo), "-o", str(tmp_path / "f"), "--writer", "nifti", "--debug")
    assert failed.returncode == 1 and "Traceback" in failed.stderr, "--debug after the command shows tracebacks"


def test_debug_shows_tracebacks(demo: Path, tmp_path: Path) -> None:
    (demo / "segmentations/Patient 001/CT.nii.gz").write_bytes(b"\x1f\x8b broken")
    plain = _run("export", str(demo), "-o", str(tmp_path / "a"), "--writer", "nifti")
    debug = _run("--debug", "export", str(demo), "-o", str(tmp_path / "b"), "--writer", "nifti")
    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr


def test_progress_bar_on_a_terminal(demo: Path, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(demo), "-o", str(tmp_path / "o"),
                               "--writer", "nifti"], stdout=subprocess.PIPE, stderr=secondary, timeout=120)
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "exporting" in shown and "4/4" in shown


def test_multiple_writers_get_their_own_roots(demo: Path, tmp_path: Path) -> None:
    class Copy:
        @labelport.hookimpl
        def register_writers(self) -> list[labelport.WriterSpec]:
            spec = labelport.Registry(entry_point_plugins=False).writer("nifti").spec
            return [labelport.WriterSpec("nifti-copy", "the nifti writer again", spec.write, options=spec.options)]

    registry = labelport.Registry(entry_point_plugins=False, extra=[("copy", Copy())])
    report = labelport.export(demo, tmp_path / "o", ["nifti", "nifti-copy"], registry=registry)
    assert report.ok and report.roots == {"nifti": str(tmp_path / "o" / "nifti"),
                                          "nifti-copy": str(tmp_path / "o" / "nifti-copy")}
    for name in ("nifti", "nifti-copy"):
        entries = json.loads((tmp_path / "o" / name / "tasks.json").read_text())
        assert len(entries) == 4
        assert all((tmp_path / "o" / name / s["segmentations"]).is_file()
                   for e in entries for s in e["series"] if "segmentations" in s)


# -- the README ---------------------------------------------------------------------------------------------

def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", README, flags=re.S | re.M)


def test_readme_opens_with_two_commands() -> None:
    first = _blocks("sh")[0].strip().splitlines()
    assert len(first) == 2
    setup, tests = first
    assert "pip install" in setup and "labelport export fixtures/demo" in setup
    assert "pytest" in tests
    # the demo export part of the first command, with this environment's labelport
    export = shlex.split(setup.split("&&")[-1])
    assert export[0].endswith("labelport")


def test_readme_cli_examples(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fixtures" / "demo", tmp_path / "fixtures" / "demo")
    lines = [line for line in _blocks("sh")[1].splitlines() if line.startswith("labelport ")]
    assert len(lines) >= 4
    for line in lines:
        run = subprocess.run([sys.executable, "-m", "labelport.cli", *shlex.split(line)[1:]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{line}: {run.stderr}"
    assert len(json.loads((tmp_path / "out/one/tasks.json").read_text())) == 1
    assert len(json.loads((tmp_path / "out/gt/tasks.json").read_text())) == 3


def test_readme_python_example(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fixtures" / "demo", tmp_path / "fixtures" / "demo")
    code = _blocks("python")[0]
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Patient 001 CT 2 Kidney 1" in run.stdout
    assert "{'nifti': 3} []" in run.stdout
    training = subprocess.run([sys.executable, "-c", _blocks("python")[1]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    assert training.returncode == 0, training.stderr
    assert training.stdout.startswith("5 Patient 001 (32, 28, 12)")


@pytest.mark.parametrize("args", [["export", "--help"], ["writers", "--help"], ["writers"], ["writers", "--json"]])
def test_commands_run(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def test_writers_lists_each_option_with_its_default_and_help() -> None:
    text = _run("writers").stdout
    assert "--opt nifti.compresslevel=<int> [default: 1]  ISA-L gzip level 0-3" in text
    assert "--opt semantic-nifti.overlap=" in text and "[default: lowest]" in text
    rows = {r["name"]: r for r in json.loads(_run("writers", "--json").stdout)["writers"]}
    assert rows["png"]["defaults"]["mode"] == "color" and "taxonomy colours" in rows["png"]["help"]["mode"]
    assert rows["coco"]["defaults"]["window"] == "" and set(rows["coco"]["help"]) == set(rows["coco"]["options"])


def test_switching_writers_in_one_folder_is_reported(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _run("export", str(demo), "-o", str(out), "--writer", "nifti").returncode == 0
    niftis = len(list(out.rglob("*.nii.gz")))
    run = _run("export", str(demo), "-o", str(out), "--writer", "png")
    assert run.returncode == 0
    assert "held the output of writer 'nifti'; writer 'png' replaces it" in run.stderr + run.stdout
    assert f"4 written, 0 unchanged, 0 removed ({niftis} file(s) deleted)" in run.stdout
    assert not list(out.rglob("*.nii.gz"))
    again = _run("export", str(demo), "-o", str(out), "--writer", "png")
    assert "held the output" not in again.stderr + again.stdout and "deleted" not in again.stdout


def test_dry_run_says_what_would_change_and_writes_nothing(demo: Path, tmp_path: Path) -> None:
    fresh = _run("export", str(demo), "-o", str(tmp_path / "new"), "--writer", "nifti,png", "--dry-run")
    assert fresh.returncode == 0 and not (tmp_path / "new").exists()
    assert "nifti: 4 to write, 0 unchanged, 0 to remove" in fresh.stdout and "dry run" in fresh.stdout
    out = tmp_path / "o"
    assert _run("export", str(demo), "-o", str(out), "--writer", "nifti").returncode == 0
    tasks = json.loads((demo / "tasks.json").read_text())
    (demo / "tasks.json").write_text(json.dumps(tasks[1:]))  # the first task leaves the source
    os.utime(demo / "segmentations/Patient 003/CT.nii.gz")  # and one label map is written again
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    plan = _run("export", str(demo), "-o", str(out), "--writer", "nifti", "--dry-run")
    assert plan.returncode == 0 and "nifti: 1 to write, 2 unchanged, 1 to remove" in plan.stdout, plan.stdout
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()} == before
    real = _run("export", str(demo), "-o", str(out), "--writer", "nifti")
    assert "nifti: 1 written, 2 unchanged, 1 removed" in real.stdout, "the dry run told the truth"


def test_tasks_of_an_export_folder(demo: Path) -> None:
    records = json.loads((demo / "tasks.json").read_text())
    listed = [json.loads(line) for line in _run("tasks", str(demo)).stdout.splitlines()]
    assert [t["taskId"] for t in listed] == [r["taskId"] for r in records]
    assert all(t["currentStageName"] == r["currentStageName"] and t["name"] == r["name"]
               for t, r in zip(listed, records))
    assert [s["name"] for s in listed[1]["series"]] == [s["name"] for s in records[1]["series"]]
    ground_truth = _run("tasks", str(demo), "--search", "groundtruth").stdout.splitlines()
    done = [json.loads(line)["name"] for line in ground_truth]
    assert done == [r["name"] for r in records if r["currentStageName"] == "END"]
    one = _run("tasks", str(demo), "--name", "Patient 00", "--limit", "1").stdout.splitlines()
    assert [json.loads(line)["name"] for line in one] == ["Patient 001"]
    assert _run("tasks", str(demo), "--name", "Patient 00", "--exact").stdout == ""
    for args, message in [(["--stage", "review_1"], "did you mean 'Review_1'?"),
                          (["--search", "queued"], "needs a live project"),
                          (["--user-id", "x"], "are for redbrick:")]:
        run = _run("tasks", str(demo), *args)
        assert run.returncode == 2 and message in run.stderr, run.stderr


def test_events_of_an_export_folder_without_or_with_a_bad_trail(demo: Path) -> None:
    run = _run("events", str(demo))
    assert run.returncode == 1 and "no audit trail" in run.stderr and str(demo) in run.stderr, run.stderr
    (demo / "report-1.json").write_text('[{"taskId": "a", "events": []}, 7, {"taskName": "no id"}, {"taskId": "b"')
    run = _run("events", str(demo))
    assert run.returncode == 1 and "report-1.json" in run.stderr and "malformed JSON" in run.stderr, run.stderr
    (demo / "report-2.json").write_text('[{"taskId": "a", "events": []}, 7, {"taskName": "no id"}]')
    run = _run("events", str(demo))
    assert run.returncode == 0 and [json.loads(line)["taskId"] for line in run.stdout.splitlines()] == ["a"]
    assert "report-2.json: record 2 is not a task's events" in run.stderr
    assert "record 3" in run.stderr and "report-1.json" not in run.stderr, "the newest report is read"
    run = _run("events", str(demo), "--since", "2025-01-01")  # task a is not in tasks.json and has no events
    assert run.returncode == 0 and run.stdout == ""
    run = _run("events", str(demo), "--api-url", "http://x")
    assert run.returncode == 2 and "are for redbrick:" in run.stderr


def test_verbose_prints_one_line_per_task_in_source_order(demo: Path, tmp_path: Path) -> None:
    target, broken = demo / "segmentations/Patient 003/CT.nii.gz", "Patient 003"
    target.write_bytes(target.read_bytes()[:60])  # cut short
    run = _run("export", str(demo), "-o", str(tmp_path / "out"), "-w", "nifti,png", "-v", "-j", "2")
    names = [t["name"] for t in json.loads((demo / "tasks.json").read_text())]
    lines = [line for line in run.stdout.splitlines() if line.split(":")[0] in names]
    assert [line.split(":")[0] for line in lines] == names, run.stdout
    assert all(line.endswith("written nifti, png") for line in lines if not line.startswith(broken)), lines
    assert f"{broken}: failed nifti, png" in lines and run.returncode == 1
    assert f"failed: task '{broken}', series 'CT'" in run.stderr, "the reason is in the summary"
    again = _run("-v", "export", str(demo), "-o", str(tmp_path / "out"), "-w", "nifti,png", "--dry-run")
    assert f"{names[0]}: unchanged nifti, png" in again.stdout and f"{broken}: written nifti, png" in again.stdout

    seen: list[labelport.TaskDone] = []
    labelport.export(demo, tmp_path / "api", ["nifti"], on_task=seen.append, workers=2)
    assert [t.name for t in seen] == names and [t.failed for t in seen if t.name == broken] == [("nifti",)]
    assert all(t.messages for t in seen if t.name == broken)


def test_writers_name_shows_one_writers_documentation() -> None:
    import labelport_writers.png as png_module

    run = _run("writers", "png")
    assert run.returncode == 0 and run.stdout.startswith("png  ")
    assert png_module.__doc__ is not None and png_module.__doc__.splitlines()[2] in run.stdout
    assert "--opt png.mode=<color|index|binary> [default: color]" in run.stdout and "nifti" not in run.stdout
    docs = json.loads(_run("writers", "png", "--json").stdout)["writers"]
    assert [w["name"] for w in docs] == ["png"] and "Orientation:" in docs[0]["docs"]
    wrong = _run("writers", "pgn")
    assert wrong.returncode == 2 and "did you mean 'png'?" in wrong.stderr


def _complete(words: str) -> list[str]:
    """What bash completion offers for the last word of ``words`` (click's completion protocol)."""
    env = {**os.environ, "_LABELPORT_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(shlex.split(words)) - (0 if words.endswith(" ") else 1))}
    run = subprocess.run([sys.executable, "-m", "labelport.cli"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [line.split(",", 1)[1] for line in run.stdout.splitlines()]


def test_shell_completion_of_writers_and_options() -> None:
    assert _complete("labelport export SRC -o OUT -w n") == ["nifti", "nnunet"]
    assert _complete("labelport export SRC -o OUT --writer nifti,p") == ["nifti,png"]
    assert _complete("labelport writers rt") == ["rtstruct"]
    offered = _complete("labelport export SRC -w png --opt ")
    assert offered[:5] == ["png.mode=", "png.axis=", "png.bits=", "png.overlap=", "png.compresslevel="], offered
    assert "rtstruct.roi=" in offered, "other writers' options come after the chosen writers'"
    assert _complete("labelport export SRC -w png --opt png.mode=") == [
        "png.mode=color", "png.mode=index", "png.mode=binary"]
    assert "## Shell completion" in README and "_LABELPORT_COMPLETE=bash_source labelport" in README


def test_start_up_imports_only_what_the_command_needs() -> None:
    import labelport.cli as command
    import labelport.plugins
    import labelport.sources
    import labelport.sources.audit

    assert command.REDBRICK_PREFIX == labelport.sources.REDBRICK_PREFIX
    assert command.PLUGINS_ENV == labelport.plugins.PLUGINS_ENV and command.SEARCHES == labelport.sources.audit.SEARCHES
    code = ("import sys, labelport.cli; print(sorted(m for m in ('numpy', 'labelport.pipeline', 'labelport.sources', "
            "'labelport.plugins', 'msgspec', 'nibabel', 'pluggy', 'logging') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr
    assert _run("--version").stdout.strip() == f"labelport, version {labelport.__version__}"
    assert callable(labelport.export) and labelport.export.__module__ == "labelport.pipeline"
    code = ("import sys\nfrom labelport.cli import cli\ntry:\n    cli(['writers'], prog_name='labelport')\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'nibabel', 'msgspec', 'labelport_writers', 'logging', 'configparser')), file=sys.stderr)")
    listing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    imported = set(ast.literal_eval(listing.stderr.strip().splitlines()[-1]))
    assert listing.returncode == 0 and "nnunet" in listing.stdout
    assert "labelport_writers.nifti" in imported
    assert not imported & {"numpy", "nibabel", "msgspec"}, "listing the writers loads none of them"
    assert not imported & {"logging", "configparser"}, "nor logging, nor a parser for entry points no package has"


def test_the_command_loads_its_modules_with_the_collector_paused_and_then_collects_as_usual() -> None:
    """``labelport`` freezes what its modules made once they are loaded (labelport.loading), and runs with the
    garbage collector on; an export loads the pipeline the same way. Modules already loaded are not frozen
    again."""
    code = """
import gc, json, sys
from labelport.loading import load
before = gc.get_freeze_count()
cli = load("labelport.cli")[0]
loaded = gc.get_freeze_count()
again = load("labelport.cli", "json")
print(json.dumps([before, loaded, gc.get_freeze_count(), gc.isenabled(), again[0] is cli,
                  "labelport.pipeline" in sys.modules]))
gc.disable()
load("labelport.pipeline")
print(json.dumps([gc.isenabled(), gc.get_freeze_count() > loaded]))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first, second = map(json.loads, run.stdout.splitlines())
    assert first[0] == 0 and first[1] > 10_000 and first[2] == first[1] and first[3:] == [True, True, False]
    assert second == [False, True]


NOISY = '''
import logging

import labelport


def write(task, ctx):
    logging.getLogger("noisy").warning("a warning from %s", task.name)
    logging.getLogger("noisy").debug("a debug record from %s", task.name)
    return task.to_record()


@labelport.hookimpl
def register_writers():
    return [labelport.WriterSpec(name="noisy", description="logs", write=write)]
'''


def test_log_records_reach_stderr_as_python_has_them_and_all_of_them_with_debug(demo: Path, tmp_path: Path) -> None:
    """Without --debug logging is Python's own (warnings and errors on stderr, once each); --debug, before or
    after the command, shows every record with its level and logger. A re-run that finds nothing changed
    loads no logging."""
    (tmp_path / "noisy_plugin.py").write_text(NOISY, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "labelport", "-p", "noisy_plugin", *args], capture_output=True,
                              text=True, timeout=120, env=env)

    plain = run("export", str(demo), "-o", str(tmp_path / "a"), "-w", "noisy", "-q")
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.count("a warning from Patient 001\n") == 1 and "debug record" not in plain.stderr
    for where in (["--debug", "export"], ["export", "--debug"]):
        debug = run(*where, str(demo), "-o", str(tmp_path / where[0]), "-w", "noisy", "-q")
        assert debug.returncode == 0, debug.stderr
        assert "WARNING noisy: a warning from Patient 001" in debug.stderr
        assert "DEBUG noisy: a debug record from Patient 001" in debug.stderr
    assert _run("export", str(demo), "-o", str(tmp_path / "n"), "-w", "nifti").returncode == 0
    code = ("import sys\nfrom labelport.__main__ import main\nsys.argv[1:] = ['export', "
            f"{str(demo)!r}, '-o', {str(tmp_path / 'n')!r}, '-w', 'nifti', '-q']\ntry:\n    main()\nfinally:\n"
            "    print('logging' in sys.modules, file=sys.stderr)")
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stderr.strip() == "False", again.stderr
