"""GK-MVLP for MONAI: grounded knowledge-enhanced chest X-ray vision-language pre-training."""

__version__ = "0.1.0"
