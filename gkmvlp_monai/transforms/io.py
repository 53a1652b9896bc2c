"""Chest X-ray image readers (DICOM CR/DX, PNG/JPEG, NIfTI) and the ``LoadCXRImage(d)`` transforms.

Every reader is a ``monai.data.ImageReader`` (usable with ``LoadImage``/``LoadImaged``) and returns a
2-D float32 array in [0, 1] in MONAI's reverse-indexing convention ``[W, H]`` (array dim 0 is the
picture's x / column, dim 1 its y / row) with a 3x3 affine (pixel spacing in mm on the diagonal).

Intensity normalisation to [0, 1]:

- DICOM: stored values -> Modality LUT (RescaleSlope/Intercept or Modality LUT Sequence) -> VOI LUT
  Sequence, else the first WindowCenter/WindowWidth (pydicom ``apply_voi_lut``), scaled by the VOI
  output range; without any VOI the modality-LUT output is min-max scaled. MONOCHROME1 is then
  inverted (``1 - x``) so that it displays like MONOCHROME2 (bright = dense).
- PNG/JPEG: divided by the maximum of the bit depth (255 or 65535); colour images are converted to grey.
- NIfTI: integer types by their dtype range, floating point min-max.

Every failure is raised as ``CXRImageError`` (a ``ValueError``) whose message starts with the file name.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import ImageReader, MetaTensor
from monai.transforms import EnsureChannelFirst, MapTransform, Transform
from monai.utils import ImageMetaKey, ensure_tuple

__all__ = [
    "CXRImageError",
    "CXRDicomReader",
    "CXRPILReader",
    "CXRNiftiReader",
    "cxr_readers",
    "LoadCXRImage",
    "LoadCXRImaged",
    "LoadCXRImageD",
    "LoadCXRImageDict",
    "DICOM_SUFFIXES",
    "PIL_SUFFIXES",
    "NIFTI_SUFFIXES",
]

logger = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".dc3")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: modalities a chest radiograph can have (CR, DX; RG = conventional radiography, digitised film)
RADIOGRAPH_MODALITIES = ("CR", "DX", "RG")
_CHEST_WORDS = ("CHEST", "THORAX", "LUNG", "TORSO", "THORAC")


class CXRImageError(ValueError):
    """A chest X-ray file that cannot be used: the message names the file and the problem."""


def _one_file(data: Sequence[str | os.PathLike] | str | os.PathLike) -> Path:
    files = ensure_tuple(data)
    if len(files) != 1:
        raise CXRImageError(f"{[str(f) for f in files]}: chest X-ray readers load one file at a time")
    return Path(files[0])


def _affine_2d(spacing_x: float, spacing_y: float) -> np.ndarray:
    return np.diag([float(spacing_x), float(spacing_y), 1.0])


def _base_meta(shape_wh: tuple[int, int], spacing: tuple[float, float], reader: str) -> dict[str, Any]:
    affine = _affine_2d(*spacing)
    return {
        "affine": affine,
        "original_affine": affine.copy(),
        "spatial_shape": np.asarray(shape_wh),
        "original_channel_dim": float("nan"),
        "spacing": np.asarray(spacing, dtype=np.float64),
        "reader": reader,
    }


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


class CXRDicomReader(ImageReader):
    """Read single-frame CR/DX DICOM radiographs, displayed as MONOCHROME2 and scaled to [0, 1].

    Args:
        allowed_modalities: Modality values accepted; others (CT, MR, US, ...) raise ``CXRImageError``.
        check_body_part: warn (``warnings.warn``) when BodyPartExamined is set and is not the chest.
        voi_index: which window / VOI LUT to use when the file has several.
    """

    def __init__(
        self,
        allowed_modalities: Sequence[str] = RADIOGRAPH_MODALITIES,
        check_body_part: bool = True,
        voi_index: int = 0,
    ) -> None:
        super().__init__()
        self.allowed_modalities = tuple(m.upper() for m in allowed_modalities)
        self.check_body_part = check_body_part
        self.voi_index = voi_index

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """DICOM suffixes, or any file without a known image suffix that has the ``DICM`` preamble."""
        files = [Path(f) for f in ensure_tuple(filename)]
        if len(files) != 1:
            return False
        suffix = _suffix(files[0])
        if suffix in DICOM_SUFFIXES:
            return True
        return suffix not in PIL_SUFFIXES + NIFTI_SUFFIXES and _has_dicom_preamble(files[0])

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> tuple[Path, Any]:
        """Parse the file and check that it holds one chest radiograph frame.

        Args:
            data: one file path.
            kwargs: passed to ``pydicom.dcmread``.

        Returns:
            ``(path, dataset)``.

        Raises:
            CXRImageError: unreadable file, another modality, multi-frame, no pixel data.
        """
        import pydicom
        from pydicom.errors import InvalidDicomError

        path = _one_file(data)
        if not path.is_file():
            raise CXRImageError(f"{path}: file not found")
        try:
            ds = pydicom.dcmread(path, **kwargs)
        except InvalidDicomError as err:
            raise CXRImageError(f"{path}: not a DICOM file ({err})") from err
        except Exception as err:  # truncated or corrupt headers raise many types
            raise CXRImageError(f"{path}: unreadable DICOM file ({type(err).__name__}: {err})") from err
        modality = str(ds.get("Modality", "")).upper()
        if modality and modality not in self.allowed_modalities:
            raise CXRImageError(
                f"{path}: DICOM modality {modality!r} is not a radiograph (expected one of {self.allowed_modalities})"
            )
        if "PixelData" not in ds:
            raise CXRImageError(
                f"{path}: DICOM file has no pixel data (element missing, or the file is truncated)"
            )
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames != 1:
            raise CXRImageError(f"{path}: multi-frame DICOM ({frames} frames); a radiograph has one frame")
        if self.check_body_part:
            part = str(ds.get("BodyPartExamined", "")).upper()
            if part and not any(word in part for word in _CHEST_WORDS):
                msg = f"{path}: BodyPartExamined is {part!r}, not the chest"
                logger.warning(msg)
                warnings.warn(msg, stacklevel=2)
        return path, ds

    def get_data(self, img: tuple[Path, Any]) -> tuple[np.ndarray, dict]:
        """Decode, apply Modality LUT, VOI LUT / window and photometric interpretation.

        Args:
            img: the ``(path, dataset)`` from ``read``.

        Returns:
            ``([W, H] float32 array in [0, 1], metadata)``.

        Raises:
            CXRImageError: the pixel data cannot be decoded or is not a grey image.
        """
        from pydicom.pixels import apply_modality_lut, apply_voi_lut

        path, ds = img
        try:
            stored = ds.pixel_array
        except Exception as err:
            raise CXRImageError(
                f"{path}: pixel data cannot be decoded ({type(err).__name__}: {err}; "
                f"transfer syntax {ds.file_meta.get('TransferSyntaxUID', '?')})"
            ) from err
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        if stored.ndim == 3 and stored.shape[-1] == 3:  # colour radiograph (pydicom gives RGB)
            values = stored.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            lo, hi, voi = 0.0, float(2 ** int(ds.BitsStored) - 1), "rgb-to-grey"
            photometric = "MONOCHROME2"
        elif stored.ndim != 2:
            raise CXRImageError(f"{path}: expected one 2-D grey frame, decoded shape {stored.shape}")
        else:
            values, lo, hi, voi = self._display_values(ds, stored, apply_modality_lut, apply_voi_lut)
        if hi > lo:
            out = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
        else:
            out = np.zeros_like(values)
        if photometric == "MONOCHROME1":
            out = 1.0 - out
        spacing, spacing_source = self._spacing(ds)
        arr = np.ascontiguousarray(out.T.astype(np.float32))  # (rows, cols) -> [W, H]
        meta = _base_meta(arr.shape, (spacing[1], spacing[0]), type(self).__name__)
        meta.update(
            {
                "spacing_source": spacing_source,
                "photometric": photometric,
                "bits_stored": int(ds.get("BitsStored", 0)),
                "bits_allocated": int(ds.get("BitsAllocated", 0)),
                "modality": str(ds.get("Modality", "")),
                "body_part": str(ds.get("BodyPartExamined", "")),
                "view_position": str(ds.get("ViewPosition", "")),
                "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")),
                "voi": voi,
                "original_size": np.asarray([arr.shape[0], arr.shape[1]]),
            }
        )
        return arr, meta

    def _display_values(self, ds: Any, stored: np.ndarray, modality_lut: Any, voi_lut: Any) -> tuple:
        """Modality LUT then VOI; returns ``(values, low, high, description)`` of the display range."""
        values = modality_lut(stored, ds).astype(np.float64)
        if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
            index = min(self.voi_index, len(ds.VOILUTSequence) - 1)
            bits = int(ds.VOILUTSequence[index].LUTDescriptor[2])
            exact = values.astype(np.int64)
            source = exact if np.array_equal(exact, values) else values  # LUTs index integer values
            out = voi_lut(source, ds, index=index, prefer_lut=True).astype(np.float64)
            return out, 0.0, float(2**bits - 1), "voi-lut"
        if "WindowCenter" in ds and "WindowWidth" in ds:
            out = voi_lut(values, ds, index=self.voi_index, prefer_lut=False).astype(np.float64)
            lo, hi = self._window_output_range(ds)
            return out, lo, hi, "window"
        return values, float(values.min()), float(values.max()), "min-max"

    @staticmethod
    def _window_output_range(ds: Any) -> tuple[float, float]:
        """Output range of pydicom's windowing (PS3.3 C.11.2.1.2): the modality-LUT output range."""
        bits = int(ds.BitsStored)
        if ds.get("ModalityLUTSequence"):
            lo, hi = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
        elif int(ds.get("PixelRepresentation", 0)) == 0:
            lo, hi = 0.0, float(2**bits - 1)
        else:
            lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
        slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
        if slope is not None and intercept is not None and not ds.get("ModalityLUTSequence"):
            lo, hi = lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)
        return min(lo, hi), max(lo, hi)

    @staticmethod
    def _spacing(ds: Any) -> tuple[tuple[float, float], str]:
        """(row spacing, column spacing) in mm from PixelSpacing, else ImagerPixelSpacing, else 1."""
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            value = ds.get(keyword)
            if value is not None and len(value) == 2:
                try:
                    row, col = float(value[0]), float(value[1])
                except (TypeError, ValueError):
                    continue
                if row > 0 and col > 0:
                    return (row, col), keyword
        return (1.0, 1.0), "none"


class CXRPILReader(ImageReader):
    """Read PNG/JPEG radiographs (8 or 16 bit; colour converted to grey), scaled by bit depth to [0, 1]."""

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """True for ``.png``, ``.jpg``, ``.jpeg``."""
        files = [Path(f) for f in ensure_tuple(filename)]
        return len(files) == 1 and _suffix(files[0]) in PIL_SUFFIXES

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> tuple[Path, Any]:
        """Open and fully decode the picture.

        Args:
            data: one file path.
            kwargs: unused (kept for the ``ImageReader`` interface).

        Returns:
            ``(path, PIL image)``.

        Raises:
            CXRImageError: missing, unreadable or truncated file.
        """
        from PIL import Image, UnidentifiedImageError

        path = _one_file(data)
        if not path.is_file():
            raise CXRImageError(f"{path}: file not found")
        try:
            with Image.open(path) as im:
                im.load()
                return path, im.copy()
        except UnidentifiedImageError as err:
            raise CXRImageError(f"{path}: not a readable PNG/JPEG image") from err
        except (OSError, SyntaxError, ValueError) as err:
            raise CXRImageError(f"{path}: truncated or corrupt image ({err})") from err

    def get_data(self, img: tuple[Path, Any]) -> tuple[np.ndarray, dict]:
        """Convert to grey and scale by bit depth.

        Args:
            img: the ``(path, PIL image)`` from ``read``.

        Returns:
            ``([W, H] float32 array in [0, 1], metadata)``.

        Raises:
            CXRImageError: unsupported pixel mode.
        """
        path, im = img
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.float64)
            bits = 16
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
                raise CXRImageError(f"{path}: 32-bit integer image with values outside the 16-bit range")
            arr /= 65535.0
        elif mode in ("L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "1"):
            arr = np.asarray(im.convert("L")).astype(np.float64) / 255.0
            bits = 8
        else:
            raise CXRImageError(f"{path}: unsupported image mode {mode!r}")
        out = np.ascontiguousarray(arr.T.astype(np.float32))
        meta = _base_meta(out.shape, (1.0, 1.0), type(self).__name__)
        meta.update(
            {
                "spacing_source": "none",
                "photometric": "MONOCHROME2",
                "bits_stored": bits,
                "bits_allocated": bits,
                "modality": "",
                "body_part": "",
                "view_position": "",
                "transfer_syntax": "",
                "voi": f"{mode}-bit-depth",
                "original_size": np.asarray(out.shape),
            }
        )
        return out, meta


class CXRNiftiReader(ImageReader):
    """Read 2-D NIfTI radiographs (array taken as ``[W, H]`` as stored; singleton dims squeezed)."""

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """True for ``.nii`` and ``.nii.gz``."""
        files = [Path(f) for f in ensure_tuple(filename)]
        return len(files) == 1 and _suffix(files[0]) in NIFTI_SUFFIXES

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> tuple[Path, Any]:
        """Load the NIfTI image.

        Args:
            data: one file path.
            kwargs: unused.

        Returns:
            ``(path, nibabel image)``.

        Raises:
            CXRImageError: missing or unreadable file.
        """
        import nibabel as nib

        path = _one_file(data)
        if not path.is_file():
            raise CXRImageError(f"{path}: file not found")
        try:
            return path, nib.load(str(path))
        except Exception as err:
            raise CXRImageError(f"{path}: unreadable NIfTI file ({type(err).__name__}: {err})") from err

    def get_data(self, img: tuple[Path, Any]) -> tuple[np.ndarray, dict]:
        """Squeeze to 2-D and scale to [0, 1].

        Args:
            img: the ``(path, nibabel image)`` from ``read``.

        Returns:
            ``([W, H] float32 array in [0, 1], metadata)``.

        Raises:
            CXRImageError: not a 2-D image or truncated data.
        """
        path, nii = img
        try:
            raw = np.asarray(nii.dataobj)
        except Exception as err:
            raise CXRImageError(f"{path}: NIfTI data cannot be read ({type(err).__name__}: {err})") from err
        data = np.squeeze(raw)
        if data.ndim != 2:
            raise CXRImageError(f"{path}: expected a 2-D radiograph, NIfTI data has shape {raw.shape}")
        if np.issubdtype(data.dtype, np.integer):
            info = np.iinfo(data.dtype)
            lo, hi = (0.0, float(info.max)) if info.min == 0 else (float(data.min()), float(data.max()))
        else:
            lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        values = data.astype(np.float64)
        out = np.clip((values - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(values)
        out = np.ascontiguousarray(np.nan_to_num(out).astype(np.float32))
        zooms = tuple(float(z) for z in nii.header.get_zooms()[:2]) + (1.0, 1.0)
        meta = _base_meta(out.shape, (zooms[0], zooms[1]), type(self).__name__)
        meta.update(
            {
                "spacing_source": "nifti",
                "photometric": "MONOCHROME2",
                "bits_stored": int(data.dtype.itemsize * 8),
                "bits_allocated": int(data.dtype.itemsize * 8),
                "modality": "",
                "body_part": "",
                "view_position": "",
                "transfer_syntax": "",
                "voi": "nifti-range",
                "original_size": np.asarray(out.shape),
            }
        )
        return out, meta


def cxr_readers(check_body_part: bool = True) -> list[ImageReader]:
    """The three chest X-ray readers, in ``LoadImage`` registration order (NIfTI, PNG/JPEG, DICOM)."""
    return [CXRNiftiReader(), CXRPILReader(), CXRDicomReader(check_body_part=check_body_part)]


class LoadCXRImage(Transform):
    """Load one chest X-ray file as a float32 ``[1, W, H]`` MetaTensor in [0, 1].

    The reader is picked by suffix (DICOM also by its ``DICM`` preamble). All failures, including
    "no reader for this file type", are raised as ``CXRImageError`` naming the file.

    Args:
        check_body_part: warn when a DICOM's BodyPartExamined is not the chest.
    """

    def __init__(self, check_body_part: bool = True) -> None:
        self.readers = cxr_readers(check_body_part)

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        """Load ``filename``.

        Args:
            filename: DICOM, PNG/JPEG or NIfTI file.

        Returns:
            ``MetaTensor`` of shape ``[1, W, H]``, float32, values in [0, 1], with a 3x3 affine.

        Raises:
            CXRImageError: the file is missing, unsupported, unreadable or not a chest radiograph.
        """
        if isinstance(filename, (list, tuple)):
            path = _one_file(filename)
        else:
            path = Path(filename)
        if not path.exists():
            raise CXRImageError(f"{path}: file not found")
        readers = [r for r in self.readers if r.verify_suffix(str(path))]
        if not readers:
            raise CXRImageError(
                f"{path}: unsupported file type (expected DICOM {DICOM_SUFFIXES} or a DICM preamble, "
                f"PNG/JPEG {PIL_SUFFIXES} or NIfTI {NIFTI_SUFFIXES})"
            )
        reader = readers[-1]
        try:
            arr, meta = reader.get_data(reader.read(str(path)))
        except CXRImageError:
            raise
        except Exception as err:
            raise CXRImageError(f"{path}: cannot load image ({type(err).__name__}: {err})") from err
        meta[ImageMetaKey.FILENAME_OR_OBJ] = str(path)
        img = MetaTensor.ensure_torch_and_prune_meta(arr, meta, simple_keys=False)
        return EnsureChannelFirst(channel_dim="no_channel")(img)


class LoadCXRImaged(MapTransform):
    """Dictionary version of ``LoadCXRImage``: replaces each file name under ``keys`` by the image.

    Args:
        keys: keys holding file names (usually ``"image"``).
        check_body_part: warn when a DICOM's BodyPartExamined is not the chest.
        allow_missing_keys: skip absent keys instead of raising ``KeyError``.
    """

    def __init__(
        self, keys: KeysCollection, check_body_part: bool = True, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadCXRImage(check_body_part=check_body_part)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load every key.

        Args:
            data: a datalist item.

        Returns:
            A copy of ``data`` with images in place of file names.

        Raises:
            CXRImageError: as ``LoadCXRImage``.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


LoadCXRImageD = LoadCXRImageDict = LoadCXRImaged
