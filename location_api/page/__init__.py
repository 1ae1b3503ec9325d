"""The live map page, its files and the small JSON routes it uses (read instances only);
:func:`location_api.page.views.add_page_routes` registers them. Watch mode reads the regions'
location caches (:mod:`location_api.page.watch`), which the app factory opens."""
