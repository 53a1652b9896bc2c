"""Studies: every task's study runs through one runner (:mod:`.runner`, command line
``python -m gkmvlp_monai.studies``) into one result format, JSON rows, which :mod:`.summary` renders."""
