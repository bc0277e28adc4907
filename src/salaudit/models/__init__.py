"""The models: classifier architectures (`architectures`), their training (`classifier`), the
localizers (`localizers`: networks, training, box I/O), the epoch loop they share
(`training`) and their one checkpoint format (`checkpoints`).

The names a notebook needs most are here: ``salaudit.models.load_checkpoint(path)``,
``build_model``, ``preprocess``.
"""

from salaudit.models.architectures import (  # noqa: F401
    ARCHITECTURES,
    DEFAULT_INPUT,
    PREPROCESSING,
    Architecture,
    build_model,
    get_architecture,
    input_spec,
    load_pretrained,
    preprocess,
    to_input,
)
from salaudit.models.checkpoints import library_versions, load_checkpoint, save_checkpoint  # noqa: F401
from salaudit.registry import ARCH_SPECS, ModelError, cascade_blocks, check_image_size  # noqa: F401
