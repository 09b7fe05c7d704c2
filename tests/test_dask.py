"""Exports on a Dask cluster (LocalCluster, two worker processes): byte-identical to one local process for every
built-in writer, incremental and filtered runs as locally, a worker killed mid-task, a failing task reported by
name, the scheduler lost mid-export and a re-run that resumes, the RedBrick API source with its key kept out of
Dask's task graph and logs, and bounded work in flight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import labelport
from labelport import LabelportError

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install "
                                                        "'labelport[dask]')")

TESTS = Path(__file__).parent
WRITERS = ["nifti", "semantic-nifti", "binary-mask", "overlapping", "png", "mhd", "rtstruct", "dicom-seg",
           "images-nifti", "nnunet", "monai", "coco"]


@pytest.fixture(scope="module", autouse=True)
def plugin_env() -> Iterator[None]:
    """This process and the worker processes (which inherit its environment) load tests/dying_plugin.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        patch.setenv("LABELPORT_PLUGINS", "dying_plugin")
        patch.setenv("DASK_LOGGING__DISTRIBUTED", "warning")
        yield


def _cluster() -> Any:
    """A LocalCluster of two one-thread worker processes, with this process's environment."""
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")


@pytest.fixture(scope="module")
def cluster(plugin_env: None) -> Iterator[Any]:
    with _cluster() as cluster:
        yield cluster


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".labelport" not in p.parts}


def _same(a: Path, b: Path) -> None:
    files_a, files_b = _files(a), _files(b)
    assert sorted(files_a) == sorted(files_b)
    different = [name for name in files_a if files_a[name] != files_b[name]]
    assert different == [], different


@pytest.fixture
def case(tmp_path: Path, make_case: Any) -> Path:
    return make_case(tmp_path / "case", "--tasks", "3", "--overlap", "--thin", "--shape", "40", "36", "12")


@pytest.mark.slow
def test_every_writer_byte_identical_to_one_process(cluster: Any, case: Path, tmp_path: Path) -> None:
    address = cluster.scheduler_address
    on_dask = labelport.export(case, tmp_path / "dask", WRITERS, scheduler=address)
    local = labelport.export(case, tmp_path / "local", WRITERS, workers=1)
    assert on_dask.ok and local.ok, [str(f) for f in on_dask.failures + local.failures]
    assert on_dask.written == local.written == dict.fromkeys(WRITERS, 3)
    _same(tmp_path / "dask", tmp_path / "local")
    assert not list((tmp_path / "dask").rglob(".labelport/tmp/*")), "no file being written is left"


def test_incremental_and_filtered_runs_as_locally(cluster: Any, case: Path, tmp_path: Path) -> None:
    address, out, local = cluster.scheduler_address, tmp_path / "dask", tmp_path / "local"
    first = labelport.export(case, out, ["nifti", "dying"], scheduler=address)
    assert first.ok and first.written == {"nifti": 3, "dying": 3}
    again = labelport.export(case, out, ["nifti", "dying"], scheduler=address)
    assert again.written == {"nifti": 0, "dying": 0} and again.unchanged == {"nifti": 3, "dying": 3}
    path = case / "segmentations" / "Case 002" / "CT Axial.nii.gz"  # one voxel of one task changes
    image = nib.load(str(path))
    data = np.asarray(image.dataobj).copy()
    data[0, 0, 0] = 1
    nib.save(nib.Nifti1Image(data, image.affine, image.header), str(path))
    records = json.loads((case / "tasks.json").read_text())
    one = labelport.export(case, out, ["nifti", "dying"], scheduler=address, task_ids=[records[0]["taskId"]])
    assert one.written == {"nifti": 0, "dying": 0} and one.unchanged == {"nifti": 1, "dying": 1}
    edited = labelport.export(case, out, ["nifti", "dying"], scheduler=address)
    assert edited.written == {"nifti": 1, "dying": 1} and edited.unchanged == {"nifti": 2, "dying": 2}
    labelport.export(case, local, ["nifti", "dying"], workers=1)
    _same(out, local)


def test_failing_task_is_reported_by_name(cluster: Any, case: Path, tmp_path: Path) -> None:
    from dying_plugin import setenv

    with distributed.Client(cluster.scheduler_address) as client:
        client.run(setenv, "LABELPORT_TEST_RAISE", "Case 002")  # read in the workers, when the task runs
        report = labelport.export(case, tmp_path / "out", ["nifti", "dying"], scheduler=client)
        client.run(setenv, "LABELPORT_TEST_RAISE", None)
    assert [(f.task, f.writer) for f in report.failures] == [("Case 002", "dying")]
    assert "this writer refuses this task" in report.failures[0].message
    assert report.written == {"nifti": 3, "dying": 2}


@pytest.mark.slow
def test_worker_killed_mid_task(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("LABELPORT_TEST_MARKERS", str(markers))
    monkeypatch.setenv("LABELPORT_TEST_DIE", "Case 002")
    with _cluster() as cluster:
        report = labelport.export(case, tmp_path / "dask", ["nifti", "dying"], scheduler=cluster.scheduler_address)
    monkeypatch.delenv("LABELPORT_TEST_DIE")
    assert (markers / "Case 002").exists(), "a worker died on Case 002"
    assert report.ok and report.written == {"nifti": 3, "dying": 3}, [str(f) for f in report.failures]
    labelport.export(case, tmp_path / "local", ["nifti", "dying"], workers=1)
    _same(tmp_path / "dask", tmp_path / "local")  # no half-written ids.txt anywhere


@pytest.mark.slow
def test_scheduler_lost_mid_export_then_a_rerun_resumes(tmp_path: Path, make_case: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case(tmp_path / "case8", "--tasks", "8", "--shape", "24", "20", "8")
    monkeypatch.setenv("LABELPORT_TEST_SLOW", "1")  # each task takes a second: 2 workers cannot finish 8 at once
    cluster = _cluster()
    monkeypatch.delenv("LABELPORT_TEST_SLOW")
    done: list[str] = []

    def lose_it(task: labelport.TaskDone) -> None:
        done.append(task.name)
        if len(done) == 1:
            cluster.close()

    with pytest.raises(LabelportError, match=r"lost the Dask scheduler .* the next export resumes"):
        labelport.export(case, tmp_path / "out", ["nifti", "dying"], scheduler=cluster.scheduler_address,
                         on_task=lose_it)
    assert done[0] == "Case 001" and len(done) < 8, done  # the others were queued or running
    resumed = labelport.export(case, tmp_path / "out", ["nifti", "dying"])
    assert resumed.ok and resumed.unchanged == dict.fromkeys(["nifti", "dying"], len(done)), resumed
    assert resumed.written == dict.fromkeys(["nifti", "dying"], 8 - len(done))
    labelport.export(case, tmp_path / "clean", ["nifti", "dying"])
    _same(tmp_path / "out", tmp_path / "clean")


def test_redbrick_api_source_and_its_key(cluster: Any, demo: Path, tmp_path: Path) -> None:
    from redbrick_emulator import Emulator
    from redbrick_project import ORG, PROJECT, serve_export

    from labelport.sources.redbrick import RedBrickProject

    key = "k" * 43
    seen: list[str] = []
    with distributed.Client(cluster.scheduler_address) as client, Emulator(key) as emulator:
        serve_export(emulator, demo, page_size=2)

        def look(task: labelport.TaskDone) -> None:  # what the scheduler shows while tasks run
            seen.append(client.run_on_scheduler(lambda dask_scheduler: repr([
                (ts.key, ts.run_spec) for ts in dask_scheduler.tasks.values()])))

        project = RedBrickProject(ORG, PROJECT, key=key, url=emulator.url, cache=tmp_path / "cache")
        report = labelport.export(project, tmp_path / "api", ["nifti"], scheduler=client, on_task=look)
        assert report.ok, [str(f) for f in report.failures]
        logs = json.dumps([client.get_scheduler_logs(), client.get_worker_logs()])
        assert client.status == "running", "a caller's Client stays open"
    local = labelport.export(demo, tmp_path / "local", ["nifti"])
    assert local.ok and sorted(_files(tmp_path / "api")) == sorted(_files(tmp_path / "local"))
    for name in _files(tmp_path / "local"):
        if name.endswith(".nii.gz"):
            assert _files(tmp_path / "api")[name] == _files(tmp_path / "local")[name], name
    assert seen and any("labelport-task-" in s for s in seen)
    assert all(key not in s for s in seen) and key not in logs


def test_work_in_flight_is_bounded(cluster: Any, tmp_path: Path) -> None:
    from cases import tiny_export

    project = tiny_export(tmp_path / "src", [f"Case {n:03d}" for n in range(40)])
    counts: list[tuple[int, int]] = []

    def states(dask_scheduler: Any) -> tuple[int, int]:
        """(unfinished, held) labelport tasks on the scheduler: submitted and not done yet, and not released yet
        (done ones included: a result the export has taken is released by a message that may still be on its
        way when the next task is submitted)."""
        mine = [ts.state for key, ts in dask_scheduler.tasks.items() if str(key).startswith("labelport-task-")]
        return (sum(state in ("waiting", "queued", "processing", "no-worker") for state in mine),
                sum(state not in ("released", "forgotten") for state in mine))

    with distributed.Client(cluster.scheduler_address) as client:
        def count(task: labelport.TaskDone) -> None:
            counts.append(client.run_on_scheduler(states))

        report = labelport.export(project, tmp_path / "out", ["nifti"], scheduler=client, on_task=count)
    assert report.ok and report.written == {"nifti": 40} and len(counts) == 40
    assert 0 < max(unfinished for unfinished, _ in counts) <= 2 * 2, counts  # two per worker thread
    assert max(held for _, held in counts) <= 2 * 2 * 2, counts  # results do not pile up on the scheduler


def test_command_line_local_cluster(demo: Path, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(demo), "-o", str(tmp_path / "d"),
                          "-w", "nifti,png", "--scheduler", "local:2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "INFO" not in run.stderr, "Dask's own log lines stay out of the export's output"
    assert "nifti: 4 written" in run.stdout
    labelport.export(demo, tmp_path / "l", ["nifti", "png"], workers=1)
    _same(tmp_path / "d", tmp_path / "l")
    for args, message in [(["--scheduler", "local:0"], "expected local:N"),
                          (["--scheduler", "local:2", "--task-timeout", "5"], "a Dask cluster has its own limits")]:
        bad = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(demo), "-o", str(tmp_path / "x"),
                              "-w", "nifti", *args], capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


def test_relative_paths_reach_workers_elsewhere(cluster: Any, case: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with distributed.Client(cluster.scheduler_address) as client:
        before = client.run(os.getcwd)
        client.run(os.chdir, "/")  # workers started in another folder, as on another machine
        try:
            monkeypatch.chdir(tmp_path)
            report = labelport.export("case", "out", ["nifti"], scheduler=client)
        finally:
            for worker, cwd in before.items():
                client.run(os.chdir, cwd, workers=[worker])
    assert report.ok and report.written == {"nifti": 3}, [str(f) for f in report.failures]
    labelport.export(case, tmp_path / "local", ["nifti"])
    _same(tmp_path / "out", tmp_path / "local")


def test_two_exports_share_a_cluster(case: Path, tmp_path: Path, demo: Path) -> None:
    """Two exports at once on one worker with two threads: each gets its own source, writers and folders."""
    import threading

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as two, \
            distributed.Client(two) as client:
        reports: dict[str, Any] = {}
        jobs = [("case", case, ["nifti", "png"]), ("demo", demo, ["semantic-nifti", "dying"])]
        threads = [threading.Thread(target=lambda n=n, s=s, w=w: reports.__setitem__(
            n, labelport.export(s, tmp_path / f"{n}-dask", w, scheduler=client))) for n, s, w in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for name, source, writers in jobs:
        assert reports[name].ok, [str(f) for f in reports[name].failures]
        labelport.export(source, tmp_path / f"{name}-local", writers)
        _same(tmp_path / f"{name}-dask", tmp_path / f"{name}-local")
