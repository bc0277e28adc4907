"""Deprecated: the label readers are `salaudit.datasets.labels` (e.g. ``decode_siim_rle``)."""

from salaudit._moved import moved

__getattr__ = moved(__name__, "salaudit.datasets.labels")
