"""The ``labelport`` command (also ``python -m labelport``): :mod:`labelport.cli`, loaded with the garbage
collector paused (see :mod:`labelport.loading`)."""

from __future__ import annotations

from .loading import load


def main() -> None:
    load("labelport.cli")[0].main()


if __name__ == "__main__":
    main()
