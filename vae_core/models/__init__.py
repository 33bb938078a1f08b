"""Built-in models; importing this package registers them."""

from vae_core.models.base import BaseVAE, ImportanceTerms, ModelConfig
from vae_core.models.mlp import MLPVAE, MLPConfig
from vae_core.models.conv import ConvVAE, ConvConfig
from vae_core.models.cvae import CVAE, CVAEConfig
from vae_core.models.hvae import HierarchicalVAE, HVAEConfig
from vae_core.models.iaf import IAFVAE, IAFConfig
from vae_core.models.vaegan import VAEGAN, VAEGANConfig
from vae_core.models.vqvae import VQVAE, VQVAEConfig

__all__ = ["BaseVAE", "ImportanceTerms", "ModelConfig", "MLPVAE", "MLPConfig", "ConvVAE", "ConvConfig",
           "CVAE", "CVAEConfig", "HierarchicalVAE", "HVAEConfig", "IAFVAE", "IAFConfig", "VAEGAN", "VAEGANConfig",
           "VQVAE", "VQVAEConfig"]
