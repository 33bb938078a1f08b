"""vae_core: variational autoencoders you can train, evaluate, explore and animate.

Pure PyTorch + NumPy; never imports Qt. See docs/ARCHITECTURE.md for the API.
"""
