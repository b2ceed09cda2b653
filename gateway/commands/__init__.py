"""Sub-commands of ``council-gateway``: one module each, with ``add_parser(subparsers)``."""
