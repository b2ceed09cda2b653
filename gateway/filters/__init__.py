"""The filters: one file each, with one entry point, ``async def check(ctx) -> Report``.

Each module holds its filter's class, its config section (a frozen dataclass and the function
that reads it) and ``KINDS``, the finding codes it reports with their default actions. The list of
filters, their default order and how each is built from the config is in
:mod:`gateway.assembly`; nothing here registers itself.
"""
