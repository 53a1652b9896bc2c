"""Anatomy-aware region extraction: the 29 Chest ImaGenome region boxes for any frontal chest radiograph.

- :mod:`.boxes`: IoU/GIoU, region dict <-> ``[29, 4]`` arrays, affine box warps, letterbox.
- :mod:`.atlas`: training-free fallback, ITK affine registration of a template with its boxes.
- :mod:`.phantom`: a parametric chest phantom with exact boxes (tests, smoke runs).
"""
