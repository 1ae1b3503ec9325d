"""Build settings pyproject.toml cannot state: the compiled candidate scan of geo_index.

``geo_index/_cscan.c`` is the C form of :func:`geo_index._scan.search`. It is optional:
without a C compiler and the Python headers the install still succeeds and ``geo_index``
uses its Python scan. ``-ffp-contract=off`` keeps the compiler from fusing multiply-adds,
so the distances it computes stay bit-identical to :func:`geo_index.haversine_m`.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "geo_index._cscan",
            sources=["geo_index/_cscan.c"],
            extra_compile_args=["-O2", "-ffp-contract=off"],
            libraries=["m"],
            optional=True,
        )
    ]
)
