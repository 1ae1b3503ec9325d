"""Build settings pyproject.toml cannot state: the compiled parts of geo_index and location_api.

``geo_index.native`` is geo_index's store, query planners and exact scan (``geo_index/native.c``
and the files it names); every index runs on it, so the install needs a C compiler and the
Python headers. ``-ffp-contract=off`` keeps the compiler from fusing multiply-adds, so the
distances it computes stay bit-identical to :func:`geo_index.haversine_m`.
``location_api._csearch`` is the searches' one compiled path: ``_cquery.c`` reads the common
query strings, ``_crender.c`` assembles the response body
(:func:`location_api.render.search_body`, every search's), ``_cplain.c`` answers a plain
nearby search with an index's page in one call (:func:`location_api.search.plain_body`) and
``_carea.c`` a plain area search (:func:`location_api.search.area_body`), through the C
interface ``geo_index/native.h`` publishes. Both extensions are required.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "geo_index.native",
            sources=[
                "geo_index/native.c",
                "geo_index/_index_query.c",
                "geo_index/_box.c",
                "geo_index/_store.c",
                "geo_index/_merge.c",
                "geo_index/_plan.c",
                "geo_index/_query.c",
                "geo_index/_exact.c",
                "geo_index/_s2geom.c",
            ],
            depends=[
                "geo_index/native.h",
                "geo_index/_index.h",
                "geo_index/_store.h",
                "geo_index/_plan.h",
                "geo_index/_query.h",
                "geo_index/_exact.h",
                "geo_index/_keys.h",
                "geo_index/_s2geom.h",
            ],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            libraries=["m"],
        ),
        Extension(
            "location_api._csearch",
            sources=[
                "location_api/_csearch.c",
                "location_api/_cquery.c",
                "location_api/_crender.c",
                "location_api/_cplain.c",
                "location_api/_carea.c",
            ],
            depends=["location_api/_csearch.h", "geo_index/native.h"],
            include_dirs=["geo_index"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ]
)
