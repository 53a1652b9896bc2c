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

Scope (what the chest models were trained on), recorded in every image's metadata:

- ``body_part`` / ``body_part_source``: from BodyPartExamined, else the AnatomicRegionSequence (SNOMED
  code or code meaning), else the Study/SeriesDescription (see :func:`dicom_body_part`). A DICOM that
  names another part than the chest is refused (``CXRImageError`` naming the file and the value) unless
  ``allow_non_chest=True``, which loads it with ``in_scope = False`` and a ``scope_reason``. Nothing
  recorded anywhere is not evidence of another part: such a file is accepted with ``body_part ""``.
- ``view_position`` / ``view_source``: ViewPosition, else PatientOrientation (a row direction A/P is a
  lateral), else the Series/StudyDescription; for PNG/JPEG/NIfTI the datalist item's ``view``
  (``LoadCXRImaged``). ``lateral="flag"`` marks laterals (LL, RL, LATERAL, ...) out of scope,
  ``"refuse"`` raises ``CXRImageError``, ``"accept"`` (default, training) leaves them in scope.
"""

from __future__ import annotations

import logging
import os
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
    "dicom_body_part",
    "dicom_view_position",
    "is_lateral_view",
    "LATERAL_POLICIES",
    "LATERAL_VIEWS",
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
#: words that name the chest in BodyPartExamined, a code meaning or a description (a field that
#: includes the chest, e.g. CHESTABDOMEN or CHEST_TO_PELVIS, counts as the chest)
_CHEST_WORDS = ("CHEST", "THORAX", "THORAC", "LUNG", "TORSO", "CXR")
#: words naming a part whose name contains a chest word but is not a chest radiograph (thoracic spine)
_NOT_CHEST_FIRST = ("SPINE", "TSPINE", "CSPINE", "LSPINE", "VERTEBRA")
#: SNOMED CT (SCT) and legacy SNOMED RT (SRT) codes of the chest / thorax / lung in AnatomicRegionSequence
_CHEST_CODES = frozenset({"51185008", "43799004", "302551006", "39607008", "T-D3000", "T-D3010", "T-28000"})
#: body parts a free-text description may name (DICOM BodyPartExamined defined terms and common words);
#: a description is only taken as evidence of another part when it names one of these and no chest word
_OTHER_PARTS = (
    "ABDOMEN", "ANKLE", "ARM", "BRAIN", "BREAST", "CALCANEUS", "CLAVICLE", "COCCYX", "ELBOW",
    "EXTREMITY", "FACE", "FEMUR", "FINGER", "FOOT", "FOREARM", "HAND", "HEAD", "HEEL", "HIP", "HUMERUS",
    "JAW", "KNEE", "KUB", "LEG", "MANDIBLE", "NECK", "PELVIS", "SACRUM", "SCAPULA", "SHOULDER", "SINUS",
    "SKULL", "SPINE", "TIBIA", "TOE", "WRIST",
)  # fmt: skip
#: ViewPosition / description values of a lateral projection
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "XTABLE LATERAL", "LLAT", "RLAT"})
#: what ``LoadCXRImage(lateral=...)`` does with a lateral view
LATERAL_POLICIES = ("accept", "flag", "refuse")
LATERAL_REASON = "lateral view; model trained on frontal views"


class CXRImageError(ValueError):
    """A chest X-ray file that cannot be used: the message names the file and the problem."""


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.upper()).split() if w]


def _names_chest(text: str) -> bool:
    upper = text.upper()
    if any(w in _NOT_CHEST_FIRST for w in _words(upper)) or "SPINE" in upper:
        return False
    return any(word in upper for word in _CHEST_WORDS)


def dicom_body_part(ds: Any) -> tuple[str, str, bool | None]:
    """The body part a DICOM data set records, where it was found, and whether it is the chest.

    Looked up in order: BodyPartExamined; the AnatomicRegionSequence (a chest SNOMED code, or a code
    meaning naming the chest); the SeriesDescription, then the StudyDescription. BodyPartExamined and the
    region code are coded fields: any other value is another part. A description is free text: it counts
    only when it names the chest or one of the other body parts a radiograph is taken of (``HAND PA``).

    Args:
        ds: a ``pydicom.Dataset``.

    Returns:
        ``(value, source, is_chest)``: e.g. ``("EXTREMITY", "BodyPartExamined", False)``; ``("", "", None)``
        when nothing is recorded (unknown is not evidence of another part).
    """
    part = str(ds.get("BodyPartExamined", "") or "").strip()
    if part:
        return part, "BodyPartExamined", _names_chest(part)
    for item in ds.get("AnatomicRegionSequence", None) or []:
        code = str(item.get("CodeValue", "") or "").strip()
        meaning = str(item.get("CodeMeaning", "") or "").strip()
        scheme = str(item.get("CodingSchemeDesignator", "") or "").strip()
        if not code and not meaning:
            continue
        value = f"{meaning} ({scheme} {code})".strip() if code else meaning
        value = value.replace("( ", "(")
        return value, "AnatomicRegionSequence", code in _CHEST_CODES or _names_chest(meaning)
    for keyword in ("SeriesDescription", "StudyDescription"):
        text = str(ds.get(keyword, "") or "").strip()
        if not text:
            continue
        if _names_chest(text):
            return text, keyword, True
        if set(_words(text)) & set(_OTHER_PARTS):
            return text, keyword, False
    return "", "", None


def dicom_view_position(ds: Any) -> tuple[str, str]:
    """The view (projection) a DICOM data set records and where it was found.

    ViewPosition (0018,5101) as written (upper case: PA, AP, LL, RL, LATERAL, ...); else
    PatientOrientation, whose row direction A or P means a lateral (``LATERAL``; a frontal row direction
    L/R does not tell PA from AP and gives nothing); else a PA / AP / lateral word in the Series- or
    StudyDescription (nothing when it names several, e.g. ``CHEST PA AND LAT``).

    Args:
        ds: a ``pydicom.Dataset``.

    Returns:
        ``(view, source)``; ``("", "")`` when unknown.
    """
    view = " ".join(str(ds.get("ViewPosition", "") or "").upper().split())
    if view:
        return view, "ViewPosition"
    orientation = ds.get("PatientOrientation", None)
    if orientation is not None and not isinstance(orientation, str) and len(orientation) == 2:
        row = str(orientation[0]).upper()[:1]
        if row in ("A", "P"):
            return "LATERAL", "PatientOrientation"
    for keyword in ("SeriesDescription", "StudyDescription"):
        words = set(_words(str(ds.get(keyword, "") or "")))
        found = {w for w in words if w in ("PA", "AP")} | {"LATERAL" for w in words if w in LATERAL_VIEWS}
        if len(found) == 1:
            return found.pop(), keyword
    return "", ""


def is_lateral_view(view: str) -> bool:
    """True for a lateral projection (LL, RL, LATERAL, LAT, ...)."""
    return " ".join(str(view).upper().split()) in LATERAL_VIEWS


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
        check_body_part: check the recorded body part (:func:`dicom_body_part`); ``False`` skips the check
            (the metadata still records the part, in scope).
        allow_non_chest: load a file that names another body part than the chest, with
            ``meta["in_scope"] = False`` and a ``scope_reason``, instead of raising ``CXRImageError``.
        voi_index: which window / VOI LUT to use when the file has several.
    """

    def __init__(
        self,
        allowed_modalities: Sequence[str] = RADIOGRAPH_MODALITIES,
        check_body_part: bool = True,
        voi_index: int = 0,
        allow_non_chest: bool = False,
    ) -> None:
        super().__init__()
        self.allowed_modalities = tuple(m.upper() for m in allowed_modalities)
        self.check_body_part = check_body_part
        self.allow_non_chest = allow_non_chest
        self.voi_index = voi_index

    def _scope(self, path: Path, ds: Any) -> tuple[str, str, str]:
        """``(body_part, source, reason)``; ``reason`` is empty when the file is in scope."""
        part, source, is_chest = dicom_body_part(ds)
        if not self.check_body_part or is_chest is not False:
            return part, source, ""
        return part, source, f"{source} is {part!r}, not the chest"

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
            CXRImageError: unreadable file, another modality, multi-frame, no pixel data, or another body
                part than the chest (unless ``allow_non_chest``).
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
        _, _, reason = self._scope(path, ds)
        if reason and not self.allow_non_chest:
            raise CXRImageError(
                f"{path}: {reason}; a radiograph of another body part is out of scope "
                "(allow_non_chest=True loads it flagged instead)"
            )
        if reason:
            logger.warning("%s: %s; loaded flagged out of scope (allow_non_chest)", path, reason)
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
        part, part_source, reason = self._scope(path, ds)
        view, view_source = dicom_view_position(ds)
        arr = np.ascontiguousarray(out.T.astype(np.float32))  # (rows, cols) -> [W, H]
        meta = _base_meta(arr.shape, (spacing[1], spacing[0]), type(self).__name__)
        meta.update(
            {
                "spacing_source": spacing_source,
                "photometric": photometric,
                "bits_stored": int(ds.get("BitsStored", 0)),
                "bits_allocated": int(ds.get("BitsAllocated", 0)),
                "modality": str(ds.get("Modality", "")),
                "body_part": part,
                "body_part_source": part_source,
                "view_position": view,
                "view_source": view_source,
                "in_scope": not reason,
                "scope_reason": reason,
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
                "body_part_source": "",
                "view_position": "",
                "view_source": "",
                "in_scope": True,
                "scope_reason": "",
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
                "body_part_source": "",
                "view_position": "",
                "view_source": "",
                "in_scope": True,
                "scope_reason": "",
                "transfer_syntax": "",
                "voi": "nifti-range",
                "original_size": np.asarray(out.shape),
            }
        )
        return out, meta


def cxr_readers(check_body_part: bool = True, allow_non_chest: bool = False) -> list[ImageReader]:
    """The three chest X-ray readers, in ``LoadImage`` registration order (NIfTI, PNG/JPEG, DICOM).

    Args:
        check_body_part: check the body part a DICOM records (see :class:`CXRDicomReader`).
        allow_non_chest: flag (instead of refuse) a DICOM of another body part.
    """
    return [
        CXRNiftiReader(),
        CXRPILReader(),
        CXRDicomReader(check_body_part=check_body_part, allow_non_chest=allow_non_chest),
    ]


class LoadCXRImage(Transform):
    """Load one chest X-ray file as a float32 ``[1, W, H]`` MetaTensor in [0, 1].

    The reader is picked by suffix (DICOM also by its ``DICM`` preamble). All failures, including
    "no reader for this file type", are raised as ``CXRImageError`` naming the file. The metadata records
    the scope: ``body_part``, ``view_position`` (with their ``*_source``), ``in_scope`` and
    ``scope_reason`` (reasons joined by ``"; "``).

    Args:
        check_body_part: check the body part a DICOM records; another part than the chest is refused.
        allow_non_chest: load a DICOM of another body part flagged (``in_scope`` False) instead.
        lateral: what to do with a lateral view (LL, RL, LATERAL, ...): ``"accept"`` (default: in scope),
            ``"flag"`` (``in_scope`` False, reason ``"lateral view; model trained on frontal views"``) or
            ``"refuse"`` (``CXRImageError``). Inference of a model trained on frontal views only flags.
    """

    def __init__(
        self, check_body_part: bool = True, allow_non_chest: bool = False, lateral: str = "accept"
    ) -> None:
        if lateral not in LATERAL_POLICIES:
            raise ValueError(f"lateral={lateral!r}: choose one of {LATERAL_POLICIES}")
        self.readers = cxr_readers(check_body_part, allow_non_chest)
        self.lateral = lateral

    def __call__(self, filename: str | os.PathLike, view: str = "") -> MetaTensor:
        """Load ``filename``.

        Args:
            filename: DICOM, PNG/JPEG or NIfTI file.
            view: the view known from elsewhere (a datalist item's ``view``), used when the file records
                none (PNG/JPEG/NIfTI, or a DICOM without ViewPosition or another hint).

        Returns:
            ``MetaTensor`` of shape ``[1, W, H]``, float32, values in [0, 1], with a 3x3 affine.

        Raises:
            CXRImageError: the file is missing, unsupported, unreadable or not a chest radiograph (another
                modality; another body part unless ``allow_non_chest``; a lateral with ``lateral="refuse"``).
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
        self._apply_view(path, meta, view)
        img = MetaTensor.ensure_torch_and_prune_meta(arr, meta, simple_keys=False)
        return EnsureChannelFirst(channel_dim="no_channel")(img)

    def _apply_view(self, path: Path, meta: dict[str, Any], view: str) -> None:
        """Fill the view from ``view`` when the file has none, then apply the lateral policy."""
        hint = " ".join(str(view or "").upper().split())
        if not meta.get("view_position") and hint:
            meta["view_position"], meta["view_source"] = hint, "datalist"
        if self.lateral == "accept" or not is_lateral_view(meta.get("view_position", "")):
            return
        if self.lateral == "refuse":
            raise CXRImageError(
                f"{path}: lateral view {meta['view_position']!r} ({meta['view_source']}); "
                "the model was trained on frontal views"
            )
        reasons = [r for r in (meta.get("scope_reason", ""), LATERAL_REASON) if r]
        meta["in_scope"], meta["scope_reason"] = False, "; ".join(reasons)


class LoadCXRImaged(MapTransform):
    """Dictionary version of ``LoadCXRImage``: replaces each file name under ``keys`` by the image.

    An item's ``view`` (data contract) is the view of a file that records none (PNG/JPEG).

    Args:
        keys: keys holding file names (usually ``"image"``).
        check_body_part: check the body part a DICOM records; another part than the chest is refused.
        allow_missing_keys: skip absent keys instead of raising ``KeyError``.
        allow_non_chest: load a DICOM of another body part flagged instead (see ``LoadCXRImage``).
        lateral: ``"accept"``, ``"flag"`` or ``"refuse"`` a lateral view (see ``LoadCXRImage``).
        view_key: item key of the known view.
    """

    def __init__(
        self,
        keys: KeysCollection,
        check_body_part: bool = True,
        allow_missing_keys: bool = False,
        allow_non_chest: bool = False,
        lateral: str = "accept",
        view_key: str = "view",
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadCXRImage(check_body_part, allow_non_chest, lateral)
        self.view_key = view_key

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
        view = d.get(self.view_key, "")
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key], view=view if isinstance(view, str) else "")
        return d


LoadCXRImageD = LoadCXRImageDict = LoadCXRImaged
