"""Training and evaluation machinery over the models, data, losses and optimizers: the compiled train step, EMA,
the epoch loop, evaluation, checkpoints with exact resume, and the run summary."""

from .checkpoint_manager import RunCheckpoints
from .ema import EMA, ema_to_network_names
from .evaluator import Evaluator
from .summary import TrainingSummary
from .train_step import TrainStep
from .trainer import Trainer

__all__ = ["TrainStep", "EMA", "ema_to_network_names", "Evaluator", "RunCheckpoints", "Trainer", "TrainingSummary"]
