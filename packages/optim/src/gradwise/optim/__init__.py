"""gradwise.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedulers.

Parameters are any leaf float Tensors (``requires_grad`` ones get gradients). Every update
runs one fused in-place Numba kernel from ``gradwise.core.ops`` per parameter, in the
parameter's dtype, and bumps the parameter's version counter. ``optim.lr_scheduler`` holds
the schedulers.
"""

from gradwise.optim import lr_scheduler
from gradwise.optim.adagrad import Adagrad
from gradwise.optim.adam import Adam, AdamW
from gradwise.optim.optimizer import Optimizer, ParameterDtypeError, ParamGroup, Params, StateDict
from gradwise.optim.rmsprop import RMSprop
from gradwise.optim.sgd import SGD

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "ParamGroup",
    "ParameterDtypeError",
    "Params",
    "RMSprop",
    "StateDict",
    "__version__",
    "lr_scheduler",
]
