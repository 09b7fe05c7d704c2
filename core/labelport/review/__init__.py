"""The review page: what an export wrote, read back from its files and shown as pictures (``labelport report``)."""

from __future__ import annotations

from .page import ReportSummary, write_report

__all__ = ["ReportSummary", "write_report"]
