"""Built-in models; importing this package registers them."""

from vae_core.models.base import BaseVAE, ModelConfig
from vae_core.models.mlp import MLPVAE, MLPConfig
from vae_core.models.conv import ConvVAE, ConvConfig
from vae_core.models.cvae import CVAE, CVAEConfig

__all__ = ["BaseVAE", "ModelConfig", "MLPVAE", "MLPConfig", "ConvVAE", "ConvConfig", "CVAE", "CVAEConfig"]
