"""The gateway's configuration: one TOML file, loaded and validated once into frozen dataclasses.

:mod:`~gateway.config.reader` reads values and collects problems, :mod:`~gateway.config.core`
holds the sections every gateway has, :mod:`~gateway.config.legacy` explains old spellings and
:mod:`~gateway.config.load` parses a whole file against the schema :mod:`gateway.assembly` gives.
Nothing outside this package reads the TOML itself.
"""

from gateway.config.core import (
    Config,
    GatewayConfig,
    ListenerConfig,
    QuarantineConfig,
    TlsConfig,
)
from gateway.config.load import DEFAULT_CONFIG_PATH, Schema, SectionSpec
from gateway.config.reader import (
    ConfigError,
    NextHop,
    Problem,
    Section,
    parse_hostport,
    parse_next_hop,
    parse_size,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "ListenerConfig",
    "NextHop",
    "Problem",
    "QuarantineConfig",
    "Schema",
    "Section",
    "SectionSpec",
    "TlsConfig",
    "parse_hostport",
    "parse_next_hop",
    "parse_size",
]
