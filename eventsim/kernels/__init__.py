"""Numba kernels: arrays and scalars in, arrays out. No classes, no I/O.

Public functions elsewhere validate their inputs before calling anything here.
"""
