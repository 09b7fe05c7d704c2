"""Run RedBrick's own SDK (redbrick-sdk, in its own virtual environment) against a project and print what it
returns, as JSON, for the tests to compare with labelport's records. Not imported by the tests: they run it
with the SDK environment's Python.

    python sdk_oracle.py REQUEST.json   # {"url", "key", "org", "project", "dest", "out", "calls": [[name, kwargs]]}

Calls: ``export`` (export_tasks(with_files=True, binary_mask=False) into ``dest``), ``events``
(get_task_events), ``list`` (list_tasks, all of them: limit=None), ``active_time`` (get_active_time).
"""

from __future__ import annotations

import json
import os
import sys
import warnings


def main(request_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    warnings.simplefilter("ignore")
    import redbrick
    from redbrick.common.enums import TaskFilters

    project = redbrick.get_project(request["org"], request["project"], request["key"], request["url"])
    results = []
    for name, kwargs in request["calls"]:
        if name == "export":
            os.makedirs(request["dest"], exist_ok=True)
            os.chdir(request["dest"])
            tasks = list(project.export.export_tasks(with_files=True, binary_mask=False, destination="export",
                                                     **kwargs))
            results.append(tasks)
        elif name == "events":
            results.append(list(project.export.get_task_events(**kwargs)))
        elif name == "list":
            if kwargs.get("search"):
                kwargs["search"] = TaskFilters(kwargs["search"])
            results.append(list(project.export.list_tasks(limit=None, **kwargs)))
        elif name == "active_time":
            results.append(list(project.export.get_active_time(**kwargs)))
        else:
            raise SystemExit(f"unknown call {name}")
    with open(request["out"], "w", encoding="utf-8") as f:  # the SDK logs to stdout
        json.dump(results, f, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
