"""Application state without Qt: what the window shows, as evented Python objects.

Nothing below this package imports Qt, pyqtgraph, superqt, the widgets or the jobs (a test
walks every module to keep it so):

* :mod:`~explorer.state.document` — :class:`ExplorerState`, the open model, its dataset,
  codes and their statistics; saving and opening with the map's side files;
* :mod:`~explorer.state.training` — :class:`TrainingOptions` and the planning of a run;
* :mod:`~explorer.state.marks` — pins, groups and the selection (shared by map and studio);
* :mod:`~explorer.state.map` — projection, layout, cursor, nearest codes, drawn paths;
* :mod:`~explorer.state.studio` — the studio, one module per feature;
* :mod:`~explorer.state.lazy` — engine modules imported on first use.
* :mod:`~explorer.state.files` — the atomic, umask-respecting writer of the app's own files.
"""

from __future__ import annotations

from explorer.state.document import (CODE_STATS, DATASET_OPTION_KEYS, MAP_FILES, TRAINING_OUTCOMES, TRAINING_STATES,
                                     ExplorerState, code_stats, describe_model, map_files, read_adapted_model, read_checkpoint,
                                     same_dataset)
from explorer.state.lazy import lazy_names
from explorer.state.training import (TrainingOptions, TrainingProblem, TrainingRun, build_model_for,
                                     dataset_display_name, prepare_run, training_config, with_learning_rate)

__all__ = ["CODE_STATS", "DATASET_OPTION_KEYS", "MAP_FILES", "TRAINING_OUTCOMES", "TRAINING_STATES", "ExplorerState",
           "TrainingOptions", "TrainingProblem", "TrainingRun", "build_model_for", "code_stats", "dataset_display_name",
           "describe_model", "map_files", "prepare_run", "read_adapted_model", "read_checkpoint", "same_dataset", "training_config",
           "with_learning_rate"]

# Engine names importable from here without loading torch at import time.
__getattr__ = lazy_names(__name__, {
    "BaseVAE": "vae_core", "DatasetSplits": "vae_core", "load_checkpoint": "vae_core",
    "load_dataset": "vae_core", "save_checkpoint": "vae_core", "ShapeMismatchError": "vae_core.training",
    "TrainProgress": "vae_core.training", "check_compatible": "vae_core.training",
    "decode_codes": "vae_core.latent:decode", "encode_dataset": "vae_core.latent",
})
