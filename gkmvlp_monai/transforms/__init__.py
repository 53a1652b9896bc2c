"""Chest X-ray image I/O, transforms and pipelines (MONAI dictionary transforms)."""

from gkmvlp_monai.transforms.boxes import (
    MapBoxesToImageD,
    MapBoxesToImaged,
    MapBoxesToImageDict,
    PrepareBoxesD,
    PrepareBoxesd,
    PrepareBoxesDict,
)
from gkmvlp_monai.transforms.intensity import (
    ClipIntensity,
    ClipIntensityD,
    ClipIntensityd,
    ClipIntensityDict,
    cxr_intensity_augmentations,
)
from gkmvlp_monai.transforms.io import (
    CXRDicomReader,
    CXRImageError,
    CXRNiftiReader,
    CXRPILReader,
    LoadCXRImage,
    LoadCXRImageD,
    LoadCXRImaged,
    LoadCXRImageDict,
    cxr_readers,
)
from gkmvlp_monai.transforms.pipelines import (
    cxr_deterministic_transforms,
    cxr_random_transforms,
    cxr_train_transforms,
    cxr_transforms,
)
from gkmvlp_monai.transforms.spatial import (
    RandResizedCrop,
    RandResizedCropD,
    RandResizedCropd,
    RandResizedCropDict,
    ResizeLongestPad,
    ResizeLongestPadD,
    ResizeLongestPadd,
    ResizeLongestPadDict,
)

__all__ = [
    "cxr_train_transforms",
    "CXRDicomReader",
    "CXRImageError",
    "CXRNiftiReader",
    "CXRPILReader",
    "ClipIntensity",
    "ClipIntensityD",
    "ClipIntensityDict",
    "ClipIntensityd",
    "LoadCXRImage",
    "LoadCXRImageD",
    "LoadCXRImageDict",
    "LoadCXRImaged",
    "MapBoxesToImageD",
    "MapBoxesToImageDict",
    "MapBoxesToImaged",
    "PrepareBoxesD",
    "PrepareBoxesDict",
    "PrepareBoxesd",
    "RandResizedCrop",
    "RandResizedCropD",
    "RandResizedCropDict",
    "RandResizedCropd",
    "ResizeLongestPad",
    "ResizeLongestPadD",
    "ResizeLongestPadDict",
    "ResizeLongestPadd",
    "cxr_deterministic_transforms",
    "cxr_intensity_augmentations",
    "cxr_random_transforms",
    "cxr_readers",
    "cxr_transforms",
]
