"""gradwise.optim: Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedulers.

This distribution is a placeholder until its issue lands: it installs, imports and
declares its dependencies, and holds no public API yet.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
