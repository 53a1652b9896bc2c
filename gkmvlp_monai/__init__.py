"""GK-MVLP for MONAI: grounded knowledge-enhanced chest X-ray vision-language pre-training."""

from gkmvlp_monai._moved import install as _install_moved_paths

__version__ = "0.1.0"

_install_moved_paths()
