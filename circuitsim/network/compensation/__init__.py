"""Compensation of the circuit's errors: hardware-aware training, affine correction, adapters.

Three remedies proposed by the literature, compared on the same circuits:

- :mod:`.affine` — a per-column affine correction ``y = s·x + o`` in fixed point after the
  ADCs or the analog sum (Ferro et al.);
- :mod:`.adapters` — low-rank digital adapters ``A·B`` trained with the analog weights
  frozen (Li et al.);
- :mod:`.hwa` — hardware-aware fine-tuning of the weights through the tiles' extracted
  ``T``, the ADCs (straight-through) and the device statistics (Ghosh et al.'s ADC-aware
  training, extended).

:mod:`.hardware` is the differentiable hardware forward they share, :mod:`.config` their
settings, :mod:`.compensated` the dispatcher a sweep point calls.

Public API
----------
METHODS, CompensationConfig, to_fixed, CompensatedNetwork, compensate, fit_affine,
train_adapters, hwa_finetune, load_or_finetune
"""

from .adapters import train_adapters
from .affine import fit_affine
from .compensated import CompensatedNetwork, compensate
from .config import METHODS, CompensationConfig, to_fixed
from .hwa import hwa_finetune, load_or_finetune

__all__ = ["METHODS", "CompensationConfig", "to_fixed", "CompensatedNetwork", "compensate", "fit_affine",
           "train_adapters", "hwa_finetune", "load_or_finetune"]
