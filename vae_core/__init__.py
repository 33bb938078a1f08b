"""vae_core: variational autoencoders you can train, evaluate, explore and animate.

Pure PyTorch + NumPy; never imports Qt. See docs/ARCHITECTURE.md for the API and
``python -m vae_core --help`` for the command line.
"""

# Registers the built-in models; the registry itself is a leaf and imports no model.
import vae_core.models  # noqa: F401  (isort: skip)
from vae_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vae_core.data import DatasetSplits, ImageDataset, load_dataset
from vae_core.errors import (Cancelled, CheckpointError, CLIError, DatasetError, ExpressionError,
                             NonFiniteLossError, NotFittedError, ShapeMismatchError)
from vae_core.metrics import evaluate
from vae_core.models.base import BaseVAE
from vae_core.registry import build_model, list_models, model_config_class
from vae_core.training import TrainConfig, TrainProgress, fit, iter_training

__version__ = "0.1.0"

__all__ = [
    "BaseVAE", "build_model", "list_models", "model_config_class",
    "load_dataset", "DatasetSplits", "ImageDataset",
    "TrainConfig", "TrainProgress", "iter_training", "fit",
    "save_checkpoint", "load_checkpoint", "Checkpoint",
    "evaluate",
    "Cancelled", "CheckpointError", "CLIError", "DatasetError", "ExpressionError", "NonFiniteLossError",
    "NotFittedError", "ShapeMismatchError",
]
