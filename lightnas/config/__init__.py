"""A run's configuration: the typed schema (schema.py), YAML files and command-line overrides
parsed into it (parsing.py), and the checks of its values (validation.py)."""

from lightnas.config.parsing import (
    ArgParser,
    build_parser,
    check_sections,
    config_files,
    import_extensions,
    load_module_file,
    not_a_mapping,
    parse_config,
    read_config_file,
)
from lightnas.config.schema import (
    REGISTRY_KEYS,
    SECTIONS,
    CheckpointConfig,
    Config,
    DistillConfig,
    DistributedConfig,
    ExportConfig,
    ModelConfig,
    OptimConfig,
    SearchConfig,
    TrackingConfig,
    strategy_options,
)
from lightnas.config.validation import validate

__all__ = [
    "REGISTRY_KEYS",
    "SECTIONS",
    "ArgParser",
    "CheckpointConfig",
    "Config",
    "DistillConfig",
    "DistributedConfig",
    "ExportConfig",
    "ModelConfig",
    "OptimConfig",
    "SearchConfig",
    "TrackingConfig",
    "build_parser",
    "check_sections",
    "not_a_mapping",
    "read_config_file",
    "config_files",
    "import_extensions",
    "load_module_file",
    "parse_config",
    "strategy_options",
    "validate",
]
