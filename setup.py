"""Build settings pyproject.toml cannot state: the compiled parts of geo_index and location_api.

``geo_index/_cscan.c`` is the C form of :func:`geo_index._scan.search`. It is optional:
without a C compiler and the Python headers the install still succeeds and ``geo_index``
uses its Python scan. ``-ffp-contract=off`` keeps the compiler from fusing multiply-adds,
so the distances it computes stay bit-identical to :func:`geo_index.haversine_m`.
``location_api._csearch`` is the nearby search's hot path: ``_cquery.c`` reads the common
query string (:func:`location_api.validate.parse_plain_query_string`) and ``_crender.c``
assembles the response body (:func:`location_api.render.search_body`) and ``_ccursor.c``
signs the paging cursor (:func:`location_api.cursor.encode_cursor`), and ``_cplain.c`` runs
the three with ``GeohashIndex``'s page in one call (:func:`location_api.search.plain_body`),
through the C interface ``geo_index/_cscan_api.h`` publishes; it is optional in the same way.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "geo_index._cscan",
            sources=["geo_index/_cscan.c", "geo_index/_ccells.c"],
            depends=["geo_index/_ccells.h", "geo_index/_cscan_api.h"],
            extra_compile_args=["-O2", "-ffp-contract=off"],
            libraries=["m"],
            optional=True,
        ),
        Extension(
            "location_api._csearch",
            sources=["location_api/_csearch.c", "location_api/_cquery.c", "location_api/_crender.c",
                     "location_api/_ccursor.c", "location_api/_cplain.c"],
            depends=["location_api/_csearch.h", "geo_index/_cscan_api.h"],
            include_dirs=["geo_index"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
