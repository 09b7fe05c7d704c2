"""The plugin system: writer specs, options, the registry, and real entry-point packages installed with pip."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pytest

import labelport
from labelport import OptionError, PluginError, WriterSpec
from labelport.testing import check_writer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fixtures" / "labelport-example-writer"


def _write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    return task.to_record()


@dataclass(frozen=True)
class _Opts:
    level: int = 1
    ratio: float = 0.5
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    label: str | None = None


def test_spec_validates_itself() -> None:
    with pytest.raises(PluginError, match="lower-case"):
        WriterSpec("Bad Name", "d", _write)
    with pytest.raises(PluginError, match="description"):
        WriterSpec("ok", "", _write)
    with pytest.raises(PluginError, match="callable"):
        WriterSpec("ok", "d", "not callable")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="dataclass"):
        WriterSpec("ok", "d", _write, options=dict)

    @dataclass(frozen=True)
    class NoDefault:
        x: int

    with pytest.raises(PluginError, match="need a default"):
        WriterSpec("ok", "d", _write, options=NoDefault)
    with pytest.raises(PluginError, match="module names"):
        WriterSpec("ok", "d", _write, requires="highdicom")  # type: ignore[arg-type]


def test_options_are_converted_by_type() -> None:
    spec = WriterSpec("w", "d", _write, options=_Opts)
    opts = spec.parse_options({"level": "3", "ratio": "0.25", "flag": "yes", "mode": "b", "label": "x"})
    assert opts == _Opts(3, 0.25, True, "b", "x")
    assert spec.parse_options({"label": "none"}).label is None
    assert spec.parse_options({"level": 2, "flag": False}) == _Opts(level=2)
    for bad, match in [({"level": "x"}, "expected int"), ({"flag": "maybe"}, "true or false"),
                       ({"mode": "c"}, "not one of"), ({"nope": "1"}, "has no option 'nope'"),
                       ({"level": 1.5}, "expected int")]:
        with pytest.raises(OptionError, match=match):
            spec.parse_options(bad)


def test_option_validation_in_post_init_is_reported(demo: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="compresslevel must be 0-3"):
        labelport.export(demo, tmp_path / "o", ["nifti"], options={"nifti": {"compresslevel": "9"}})
    with pytest.raises(OptionError, match="not selected"):
        labelport.export(demo, tmp_path / "o", ["nifti"], options={"png": {"x": "1"}})


def test_missing_optional_dependency(demo: Path, tmp_path: Path) -> None:
    class Plugin:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            return [WriterSpec("needy", "needs a module", _write, requires=("no_such_module_xyz",))]

    registry = labelport.Registry(entry_point_plugins=False, extra=[("needy", Plugin())])
    assert registry.writer("needy").spec.missing() == ["no_such_module_xyz"]
    with pytest.raises(PluginError, match="pip install no_such_module_xyz"):
        labelport.export(demo, tmp_path / "o", ["needy"], registry=registry)


def _warning_writer(tmp_path: Path) -> labelport.Registry:
    """A writer that warns once of each kind: its own UserWarning, a DeprecationWarning, and a ResourceWarning
    for a file that earlier code left open and the garbage collector closes while the writer runs."""
    import gc
    import warnings

    def warns(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        warnings.warn(f"odd spacing in {task.name}", UserWarning, stacklevel=1)
        warnings.warn("old_api() is deprecated", DeprecationWarning, stacklevel=1)
        leaked = [open(tmp_path / "leaked.txt", "w")]  # noqa: SIM115  (an unclosed file...
        leaked.append(leaked)  # ...in a cycle: only a collection finalizes it)
        del leaked
        gc.collect()
        return task.to_record()

    class Plugin:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            return [WriterSpec("warns", "warns", warns)]

    return labelport.Registry(entry_point_plugins=False, extra=[("warns", Plugin())])


def test_a_writers_warnings_are_its_own_and_as_python_shows_them(demo: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _warning_writer(tmp_path)
    report = labelport.export(demo, tmp_path / "o", ["warns"], registry=registry, workers=1)
    tasks = report.tasks_seen
    assert report.ok and tasks > 1
    assert len([w for w in report.warnings if "odd spacing" in w]) == tasks  # every task's, not once
    assert not [w for w in report.warnings if "deprecated" in w or "unclosed" in w], report.warnings
    monkeypatch.setattr(sys, "warnoptions", ["default"])  # as python -W default asks for them
    report = labelport.export(demo, tmp_path / "w", ["warns"], registry=registry, workers=1)
    assert len([w for w in report.warnings if "deprecated" in w]) == tasks
    assert [w for w in report.warnings if "unclosed file" in w]


def test_unknown_writer_lists_the_known_ones() -> None:
    with pytest.raises(PluginError, match=r"unknown writer 'nope' \(available: .*nifti"):
        labelport.Registry(entry_point_plugins=False).writer("nope")


def test_in_process_conflict_and_broken_register(recwarn: Any) -> None:
    class Dup:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            return [WriterSpec("nifti", "another nifti", _write)]

    class Raises:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            raise RuntimeError("boom")

    class Wrong:
        @labelport.hookimpl
        def register_writers(self) -> Any:
            return ["not a spec"]

    registry = labelport.Registry(entry_point_plugins=False,
                                  extra=[("dup", Dup()), ("raises", Raises()), ("wrong", Wrong())])
    with pytest.raises(PluginError, match=r"'labelport'.*and 'dup'"):
        registry.writer("nifti")
    assert {b.name for b in registry.broken} == {"raises", "wrong"}
    assert any("boom" in (b.error or "") for b in registry.broken)


def test_the_table_of_builtin_writers_is_what_their_modules_register() -> None:
    import importlib

    from labelport.plugins import BUILTIN_WRITERS

    registered = {spec.name: module for module in dict.fromkeys(BUILTIN_WRITERS.values())
                  for spec in importlib.import_module(module).register_writers()}
    assert registered == BUILTIN_WRITERS


def test_a_command_imports_only_the_builtin_writers_it_uses() -> None:
    code = textwrap.dedent("""
        import json, sys, labelport
        registry = labelport.Registry(entry_point_plugins=False)
        loaded = lambda: sorted(m for m in sys.modules if m.startswith("labelport_writers."))
        steps = [loaded(), registry.writer("mhd").name, loaded()]
        registry.writers()
        print(json.dumps(steps + [loaded()]))
    """)
    before, name, one, every = json.loads(subprocess.run([sys.executable, "-c", code], check=True, text=True,
                                                         capture_output=True).stdout)
    assert (before, name) == ([], "mhd")
    assert one == ["labelport_writers._common", "labelport_writers.mhd"]
    assert len(every) == len(labelport.plugins.BUILTIN_PLUGINS) + 1


def test_a_builtin_writer_whose_module_fails_to_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "labelport_writers.png", None)  # (importing it raises ImportError)
    registry = labelport.Registry(entry_point_plugins=False)
    assert registry.writer("nifti").name == "nifti"
    with pytest.warns(UserWarning, match="skipping plugin 'labelport_writers.png'"), \
            pytest.raises(PluginError, match=r"writer 'png' cannot be used: its module 'labelport_writers\.png' "
                                             r"failed to load: ModuleNotFoundError"):
        registry.writer("png")
    assert "png" not in [w.name for w in registry.writers()] and "mhd" in [w.name for w in registry.writers()]
    with pytest.raises(labelport.UnknownWriterError, match=r"unknown writer 'pgn'.*available: .*coco.*mhd.*semantic"):
        registry.writer("pgn")


#: the contract's project has tasks whose series lie on different grids, which one training case cannot mix
CONTRACT_OPTIONS = {"nnunet": {"case": "series"}, "monai": {"case": "series"}}


def test_every_builtin_writer_passes_the_contract(tmp_path: Path) -> None:
    registry = labelport.Registry(entry_point_plugins=False)
    names = [w.name for w in registry.writers()]
    assert "nifti" in names
    for name in names:
        check_writer(name, tmp_path / name, registry=registry, options=CONTRACT_OPTIONS.get(name))


def test_contract_catches_a_writer_that_cheats(tmp_path: Path) -> None:
    """The contract itself must be able to fail."""

    def stray(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        ctx.write_bytes(f"{ctx.task_dir()}/note.txt", b"unreferenced")
        return task.to_record()

    def drops(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        entry = task.to_record()
        entry.pop("classification", None)
        return entry

    def shifts(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        entry = task.to_record()
        for series, record in zip(task.series, entry["series"]):
            if series.label_map is not None:
                affine = series.label_map.affine.copy()
                affine[0, 3] += 1.0
                record["segmentations"] = ctx.write_nifti(ctx.series_path(series, ".nii.gz"),
                                                          series.label_map.array, affine=affine)
        return entry

    def drops_map(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        entry = task.to_record()
        for record in entry["series"]:
            record.pop("segmentMap", None)
        return entry

    def shared(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
        entry = task.to_record()
        entry["index"] = ctx.write_json("index.json", {"last": task.task_id})
        return entry

    class Cheats:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            return [WriterSpec("stray", "d", stray), WriterSpec("drops", "d", drops),
                    WriterSpec("shifts", "d", shifts), WriterSpec("drops-map", "d", drops_map),
                    WriterSpec("shared", "d", shared)]

    registry = labelport.Registry(entry_point_plugins=False, extra=[("cheats", Cheats())])
    for name, match in [("stray", "not referenced"), ("drops", "fields dropped"), ("shifts", "affine"),
                        ("drops-map", "segmentMap dropped"), ("shared", "more than one task")]:
        with pytest.raises(AssertionError, match=match):
            check_writer(name, tmp_path / name, registry=registry)


# -- real packages installed with pip into a private folder ---------------------------------------------------

BROKEN = {
    "labelport-broken-import": ("broken_import", "raise ImportError('this plugin needs libfoo')\n"),
    "labelport-dup-nifti": ("dup_nifti", """
        import labelport
        def w(task, ctx):
            return task.to_record()
        @labelport.hookimpl
        def register_writers():
            return [labelport.WriterSpec(name="nifti", description="a second nifti", write=w)]
        """),
    "labelport-bad-hook": ("bad_hook", """
        import labelport
        @labelport.hookimpl
        def register_writer():  # misspelled hook name
            return []
        """),
}


def _package(root: Path, dist: str, module: str, code: str) -> Path:
    folder = root / dist
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(textwrap.dedent(code))
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "9.9"
        [project.entry-points.labelport]
        {module} = "{module}"
        [tool.setuptools]
        packages = ["{module}"]
        """))
    return folder


@pytest.fixture(scope="module")
def plugin_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two pip --target folders: the example plugin alone, and it with three broken packages."""
    base = tmp_path_factory.mktemp("plugins")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "--no-warn-script-location"]
    good, bad = base / "good", base / "bad"
    example = shutil.copytree(EXAMPLE, base / "src" / "example")  # building leaves files in the source tree
    subprocess.run([*pip, "--target", str(good), str(example)], check=True)
    broken = [str(_package(base / "src", d, m, c)) for d, (m, c) in BROKEN.items()]
    subprocess.run([*pip, "--target", str(bad), str(example), *broken], check=True)
    return {"good": good, "bad": bad}


def _labelport(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(path), **env}
    environ.pop("LABELPORT_STRICT_PLUGINS", None) if "LABELPORT_STRICT_PLUGINS" not in env else None
    return subprocess.run([sys.executable, "-m", "labelport.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


@pytest.mark.slow
def test_example_plugin_is_discovered_and_exports(plugin_dirs: dict[str, Path], demo: Path, tmp_path: Path) -> None:
    listing = _labelport(plugin_dirs["good"], "writers", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)["writers"]}
    assert rows["example-npy"]["package"] == "labelport-example-writer"
    assert rows["example-npy"]["version"] == "0.1.0"
    assert rows["nifti"]["package"] == "labelport"
    out = tmp_path / "npy"
    run = _labelport(plugin_dirs["good"], "export", str(demo), "-o", str(out), "--writer", "example-npy",
                     "--opt", "example-npy.dtype=int32")
    assert run.returncode == 0, run.stderr
    entry = json.loads((out / "tasks.json").read_text())[0]
    arr = np.load(out / entry["series"][0]["segmentations"])
    assert arr.dtype == np.int32
    assert np.array_equal(arr, labelport.read_label_nifti(str(demo / "segmentations/Patient 001/CT.nii.gz")).array)
    assert np.allclose(entry["series"][0]["affine"], labelport.LocalExport(demo).taxonomy and
                       labelport.read_label_nifti(str(demo / "segmentations/Patient 001/CT.nii.gz")).affine)


@pytest.mark.slow
def test_example_plugin_own_tests_pass(plugin_dirs: dict[str, Path]) -> None:
    """The template's tests run labelport's writer contract through the entry point."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(plugin_dirs["good"])},
                         cwd=EXAMPLE, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


@pytest.mark.slow
def test_broken_plugins_do_not_break_labelport(plugin_dirs: dict[str, Path], demo: Path, tmp_path: Path) -> None:
    bad = plugin_dirs["bad"]
    assert _labelport(bad, "--help").returncode == 0
    listing = _labelport(bad, "writers")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout + listing.stderr
    assert "labelport-broken-import" in text and "this plugin needs libfoo" in text
    assert "labelport-bad-hook" in text and "register_writer" in text
    assert "'labelport'" in text and "'labelport-dup-nifti'" in text  # the conflict names both packages
    assert "example-npy" in listing.stdout
    help_text = _labelport(bad, "export", "--help")
    assert help_text.returncode == 0 and "example-npy" in help_text.stdout
    assert "labelport-broken-import" in help_text.stderr
    # the clashing name cannot be used; other writers still export
    clash = _labelport(bad, "export", str(demo), "-o", str(tmp_path / "a"), "--writer", "nifti")
    assert clash.returncode == 1 and "labelport-dup-nifti" in clash.stderr
    fine = _labelport(bad, "export", str(demo), "-o", str(tmp_path / "b"), "--writer", "example-npy")
    assert fine.returncode == 0, fine.stderr


@pytest.mark.slow
def test_strict_mode_raises(plugin_dirs: dict[str, Path]) -> None:
    run = _labelport(plugin_dirs["bad"], "writers", LABELPORT_STRICT_PLUGINS="1")
    assert run.returncode != 0
    assert "labelport-bad-hook" in run.stderr or "labelport-broken-import" in run.stderr


def test_entry_points_match_importlib_metadata() -> None:
    """labelport's own reader finds what importlib.metadata finds (names, values, packages, versions)."""
    from importlib.metadata import entry_points

    from labelport.entrypoints import find_entry_points

    for group in ("console_scripts", "labelport"):
        expected = sorted((e.name, e.value, e.dist.name if e.dist else "", e.dist.version if e.dist else "")
                          for e in entry_points(group=group))
        assert sorted((e.name, e.value, e.package, e.version) for e in find_entry_points(group)) == expected


# -- plugins without packaging, and mistakes caught at registration -----------------------------------------

PLAIN_PLUGIN = """
import labelport

def write(task, ctx):
    entry = task.to_record()
    entry["seen"] = ctx.write_json(f"{ctx.task_dir()}/seen.json", {"task": task.task_id})
    return entry

class Writers:
    @labelport.hookimpl
    def register_writers(self):
        return [labelport.WriterSpec(name="seen", description="one JSON per task", write=write)]

writers = Writers()

@labelport.hookimpl
def register_writers():
    return [labelport.WriterSpec(name="seen-module", description="the same, from the module", write=write)]
"""


@pytest.mark.parametrize("how", ["--plugin", "env"])
def test_plugins_named_on_the_command_line_run_on_workers_too(demo: Path, tmp_path: Path, how: str) -> None:
    (tmp_path / "plainplugin.py").write_text(PLAIN_PLUGIN)
    args = ["--plugin", "plainplugin:writers"] if how == "--plugin" else []
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    if how == "env":
        env["LABELPORT_PLUGINS"] = "plainplugin:writers, plainplugin"
    listing = subprocess.run([sys.executable, "-m", "labelport.cli", *args, "writers"], capture_output=True,
                             text=True, env=env, timeout=120)
    assert "seen " in listing.stdout and ("seen-module" in listing.stdout) == (how == "env"), listing.stderr
    run = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(demo), "-o", str(tmp_path / "o"),
                          "-w", "seen", "-j", "2", *args], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and "using one" not in run.stderr, run.stderr  # the workers loaded it too
    assert len(list((tmp_path / "o" / "segmentations").glob("*/seen.json"))) == 4


def test_a_module_without_hookimpl_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "forgotten.py").write_text("import labelport\n\ndef register_writers():\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LABELPORT_PLUGINS", "forgotten")
    with pytest.warns(UserWarning, match=r"forgotten.*no @labelport.hookimpl function"):
        registry = labelport.Registry()
    assert [b.name for b in registry.broken] == ["forgotten"]


def test_specs_with_unusable_functions_or_option_types_are_refused_at_registration() -> None:
    def one(task: Any) -> dict[str, Any]:
        return {}

    @dataclass(frozen=True)
    class Listy:
        names: list[str] = dataclasses.field(default_factory=list)

    @dataclass(frozen=True)
    class Mixed:
        value: int | str = 1

    with pytest.raises(PluginError, match=r"write must take \(task, ctx\)"):
        WriterSpec("w", "d", one)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"project must take \(entries, ctx\)"):
        WriterSpec("w", "d", _write, project=one)  # type: ignore[arg-type]
    for options in (Listy, Mixed):
        with pytest.raises(PluginError, match="need a type the command line can convert"):
            WriterSpec("w", "d", _write, options=options)
    WriterSpec("w", "d", lambda task, ctx, extra=None: {}, options=_Opts)  # more optional arguments are fine


@pytest.mark.slow
def test_new_writer_package_installs_and_passes_its_own_tests(tmp_path: Path, demo: Path) -> None:
    made = _labelport(tmp_path, "new-writer", "lab-npy", "--dir", str(tmp_path / "src"))
    assert made.returncode == 0, made.stderr
    package = tmp_path / "src" / "labelport-lab-npy"
    assert (package / ".github" / "workflows" / "tests.yml").is_file()
    assert "${{ matrix.python-version }}" in (package / ".github" / "workflows" / "tests.yml").read_text()
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "120", str(package)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(package)], check=True)
    listing = json.loads(_labelport(target, "writers", "--json").stdout)["writers"]
    assert {w["name"]: w["package"] for w in listing}["lab-npy"] == "labelport-lab-npy"
    run = _labelport(target, "export", str(demo), "-o", str(tmp_path / "out"), "-w", "lab-npy")
    assert run.returncode == 0, run.stderr
    entry = json.loads((tmp_path / "out" / "tasks.json").read_text())[0]
    source = nib.load(str(demo / "segmentations/Patient 001/CT.nii.gz"))
    assert np.array_equal(np.load(tmp_path / "out" / entry["series"][0]["segmentations"]), np.asarray(source.dataobj))
    assert np.allclose(entry["series"][0]["affine"], source.affine)
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=package,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)}, timeout=300)
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout + own.stderr
    again = _labelport(tmp_path, "new-writer", "lab-npy", "--dir", str(tmp_path / "src"))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert _labelport(tmp_path, "new-writer", "../x").returncode == 2
