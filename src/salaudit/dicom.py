"""Deprecated: the DICOM reader is `salaudit.datasets.dicom` (e.g. ``read_dicom``)."""

from salaudit._moved import moved

__getattr__ = moved(__name__, "salaudit.datasets.dicom")
