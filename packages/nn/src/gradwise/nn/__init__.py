"""gradwise.nn: Modules, parameters, initialisers, data loading and safetensors saving.

This distribution is a placeholder until its issue lands: it installs, imports and
declares its dependencies, and holds no public API yet.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
