"""vae_core: variational autoencoders you can train, evaluate, explore and animate.

Pure PyTorch + NumPy; never imports Qt. See docs/ARCHITECTURE.md for the API and
``python -m vae_core --help`` for the command line.
"""

from vae_core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from vae_core.data import DatasetError, DatasetSplits, ImageDataset, load_dataset
from vae_core.metrics import evaluate
from vae_core.models.base import BaseVAE
from vae_core.registry import build_model, list_models, model_config_class
from vae_core.training import (NonFiniteLossError, ShapeMismatchError, TrainConfig, TrainProgress,
                               fit, iter_training)

__version__ = "0.1.0"

__all__ = [
    "BaseVAE", "build_model", "list_models", "model_config_class",
    "load_dataset", "DatasetSplits", "ImageDataset", "DatasetError",
    "TrainConfig", "TrainProgress", "iter_training", "fit", "NonFiniteLossError", "ShapeMismatchError",
    "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
    "evaluate",
]
