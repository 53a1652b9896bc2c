"""Write chest X-ray DICOM files (DX / CR) with real headers, for fixtures, demos and synthetic data sets.

``write_cxr_dicom`` takes a picture as a ``(rows, cols)`` array (row-major, as it is displayed: not the
``[W, H]`` array convention of the loaded images) and writes a single-frame DICOM file in one of the
common transfer syntaxes. Compressed syntaxes are encoded with pydicom's own encoders (RLE; JPEG 2000
through pylibjpeg-openjpeg; JPEG-LS through pyjpegls) and with python-gdcm for JPEG Lossless and JPEG
baseline (Pillow is the fallback for JPEG baseline when gdcm is missing).
"""

from __future__ import annotations

import datetime
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

__all__ = [
    "SOP_CLASS_BY_MODALITY",
    "TRANSFER_SYNTAXES",
    "LOSSY_TRANSFER_SYNTAXES",
    "write_cxr_dicom",
    "voi_lut_item",
]

#: transfer syntax name accepted by ``write_cxr_dicom`` -> transfer syntax UID
TRANSFER_SYNTAXES: dict[str, UID] = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg2000": JPEG2000,
    "jpeg2000-lossless": JPEG2000Lossless,
    "jpeg-baseline": JPEGBaseline8Bit,
    "jpeg-lossless": JPEGLosslessSV1,
    "jpeg-ls": JPEGLSLossless,
}

#: names of the lossy syntaxes (decoded values only match within the codec's tolerance)
LOSSY_TRANSFER_SYNTAXES: frozenset[str] = frozenset({"jpeg2000", "jpeg-baseline"})

#: SOP class written for each modality: DX is "Digital X-Ray Image Storage - For Presentation"; the
#: non-radiograph classes exist so that tests can produce files a chest X-ray reader must refuse.
SOP_CLASS_BY_MODALITY: dict[str, str] = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# gdcm transfer syntax constants for the syntaxes pydicom cannot encode
_GDCM_SYNTAX = {"jpeg-lossless": "JPEGLosslessProcess14_1", "jpeg-baseline": "JPEGBaselineProcess1"}


def voi_lut_item(lut: np.ndarray, first_mapped: int = 0, explanation: str = "TEST VOI LUT") -> Dataset:
    """Build one item of a VOI LUT Sequence.

    Args:
        lut: 1-D array of output values (uint16 range), one per stored value from ``first_mapped`` on.
        first_mapped: the stored (modality-LUT output) value mapped by ``lut[0]``.
        explanation: free text for LUTExplanation.

    Returns:
        A ``Dataset`` with LUTDescriptor, LUTData and LUTExplanation, ready for ``VOILUTSequence``.

    Raises:
        ValueError: ``lut`` is not 1-D, is empty, longer than 65536 entries, or outside [0, 65535].
    """
    lut = np.asarray(lut)
    if lut.ndim != 1 or not 0 < lut.size <= 65536:
        raise ValueError(f"VOI LUT must be a 1-D array of 1..65536 entries, got shape {lut.shape}")
    if lut.min() < 0 or lut.max() > 65535:
        raise ValueError("VOI LUT values must lie in [0, 65535]")
    item = Dataset()
    item.LUTDescriptor = [lut.size % 65536, int(first_mapped), 16]
    item.add_new(0x00283006, "OW", lut.astype("<u2").tobytes())  # LUTData
    item.LUTExplanation = explanation
    return item


def _check_pixels(pixels: np.ndarray, bits_stored: int, number_of_frames: int | None) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 2 and number_of_frames is not None and number_of_frames > 1:
        arr = np.repeat(arr[None], number_of_frames, axis=0)
    if arr.ndim == 3 and number_of_frames is not None and arr.shape[0] != number_of_frames:
        raise ValueError(f"pixels have {arr.shape[0]} frames but number_of_frames={number_of_frames}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"pixels must be (rows, cols) or (frames, rows, cols), got shape {arr.shape}")
    if bits_stored not in (8, 10, 12, 16):
        raise ValueError(f"bits_stored must be 8, 10, 12 or 16, got {bits_stored}")
    if bits_stored == 8 and arr.dtype != np.uint8 and arr.max(initial=0) > 255:
        raise ValueError("bits_stored=8 needs pixel values in [0, 255]")
    if int(arr.max(initial=0)) >= 2**bits_stored:
        raise ValueError(f"pixel value {int(arr.max())} does not fit in bits_stored={bits_stored}")
    return np.ascontiguousarray(arr.astype(np.uint8 if bits_stored == 8 else np.uint16))


def _gdcm_transcode(path: Path, syntax: str) -> None:
    """Re-encode an uncompressed DICOM file in place with gdcm (JPEG Lossless / JPEG baseline)."""
    import gdcm  # local import: optional dependency

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise RuntimeError(f"{path}: gdcm could not read the uncompressed file to transcode it")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, _GDCM_SYNTAX[syntax])))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"{path}: gdcm could not encode {syntax}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"{path}: gdcm could not write the {syntax} file")


def _pillow_jpeg_baseline(ds: Dataset, arr: np.ndarray, quality: int = 95) -> None:
    from PIL import Image

    frames = arr[None] if arr.ndim == 2 else arr
    encoded = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame, mode="L").save(buf, format="JPEG", quality=quality, subsampling=0)
        encoded.append(buf.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"


def write_cxr_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    transfer_syntax: str = "explicit",
    modality: str = "DX",
    body_part: str = "CHEST",
    view_position: str = "PA",
    pixel_spacing: tuple[float, float] = (0.3, 0.3),
    window: tuple[float, float] | None = None,
    voi_lut: np.ndarray | Dataset | Sequence[Dataset] | None = None,
    rescale: tuple[float, float] | None = None,
    patient_id: str = "ANON",
    study_uid: str | None = None,
    sop_uid: str | None = None,
    number_of_frames: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a chest radiograph as a DICOM file.

    Args:
        path: output file (parent folders are created).
        pixels: ``(rows, cols)`` uint8/uint16 picture, row-major as displayed (``(frames, rows, cols)``
            for a multi-frame file). Values are the MONOCHROME2 picture: bright = dense.
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``; for MONOCHROME1 the stored values are
            inverted (``2**bits_stored - 1 - pixels``) so that the file displays the same picture.
        bits_stored: 8, 10, 12 or 16 (BitsAllocated is 8 for 8 bits, 16 otherwise).
        transfer_syntax: one of ``TRANSFER_SYNTAXES`` (explicit, implicit, rle, jpeg2000,
            jpeg2000-lossless, jpeg-baseline (8-bit only), jpeg-lossless, jpeg-ls).
        modality: DX (Digital X-Ray For Presentation), CR, or CT/MR/US/MG/other (for negative tests).
        body_part: BodyPartExamined.
        view_position: ViewPosition (PA, AP, LL, LATERAL, ...).
        pixel_spacing: (row spacing, column spacing) in mm, written as ImagerPixelSpacing and PixelSpacing.
        window: (WindowCenter, WindowWidth) in modality-LUT output units.
        voi_lut: a 1-D LUT array (first mapped value 0), one prepared item (see ``voi_lut_item``) or
            several items for the VOI LUT Sequence.
        rescale: (RescaleSlope, RescaleIntercept).
        patient_id: PatientID (PatientName is derived from it).
        study_uid: StudyInstanceUID (generated when None).
        sop_uid: SOPInstanceUID (generated when None).
        number_of_frames: writes NumberOfFrames; a 2-D ``pixels`` is repeated into that many frames.
        extra: further elements by keyword; a value of None deletes the element (e.g. ``{"PixelData": None}``).

    Returns:
        The path written.

    Raises:
        ValueError: unknown photometric/transfer syntax, pixel values that do not fit ``bits_stored``,
            or JPEG baseline with more than 8 bits.
        RuntimeError: the codec failed.
    """
    path = Path(path)
    syntax = transfer_syntax.lower()
    if syntax not in TRANSFER_SYNTAXES:
        raise ValueError(
            f"unknown transfer_syntax {transfer_syntax!r}; choose from {sorted(TRANSFER_SYNTAXES)}"
        )
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    if syntax == "jpeg-baseline" and bits_stored != 8:
        raise ValueError("JPEG baseline stores 8-bit images only: use bits_stored=8")
    arr = _check_pixels(pixels, bits_stored, number_of_frames)
    if photometric == "MONOCHROME1":
        arr = ((2**bits_stored - 1) - arr.astype(np.int32)).astype(arr.dtype)
    modality = modality.upper()
    sop_class = SOP_CLASS_BY_MODALITY.get(modality, _SECONDARY_CAPTURE)
    sop_uid = sop_uid or generate_uid()
    now = datetime.datetime.now()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "GKMVLP_MONAI"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "GKMVLP synthetic"
    ds.ReferringPhysicianName = ""
    ds.PatientName = f"{patient_id}^SYNTHETIC"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view_position
    ds.PatientOrientation = ["L", "F"] if view_position.upper() in ("AP", "PA", "") else ["A", "F"]
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
        ds.ImageLaterality = "U"
    ds.ImagerPixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(arr.shape[-2]), int(arr.shape[-1])
    ds.BitsAllocated = 8 if bits_stored == 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if number_of_frames is not None:
        ds.NumberOfFrames = int(number_of_frames)
    ds.RescaleSlope = float(rescale[0]) if rescale is not None else 1.0
    ds.RescaleIntercept = float(rescale[1]) if rescale is not None else 0.0
    ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter = float(window[0])
        ds.WindowWidth = float(window[1])
        ds.VOILUTFunction = "LINEAR"
    if voi_lut is not None:
        if isinstance(voi_lut, Dataset):
            items = [voi_lut]
        elif isinstance(voi_lut, np.ndarray):
            items = [voi_lut_item(voi_lut)]
        else:
            items = list(voi_lut)
        ds.VOILUTSequence = DicomSequence(items)
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB" if bits_stored == 8 else "OW"

    if syntax == "implicit":
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif syntax in ("rle", "jpeg2000-lossless", "jpeg-ls"):
        ds.compress(TRANSFER_SYNTAXES[syntax], arr, generate_instance_uid=False)
    elif syntax == "jpeg2000":
        ds.compress(JPEG2000, arr, generate_instance_uid=False, j2k_psnr=[80])
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_15444_1"

    for keyword, value in (extra or {}).items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)

    path.parent.mkdir(parents=True, exist_ok=True)
    if syntax in _GDCM_SYNTAX and "PixelData" in ds:
        try:
            import gdcm  # noqa: F401
        except ImportError:
            gdcm = None
        if gdcm is None:
            if syntax != "jpeg-baseline":
                raise RuntimeError("JPEG Lossless encoding needs python-gdcm (pip install python-gdcm)")
            _pillow_jpeg_baseline(ds, arr)
            ds.save_as(path, enforce_file_format=True)
        else:
            # gdcm encodes from a file: write uncompressed next to the target, transcode, then move
            fd, tmp = tempfile.mkstemp(suffix=".dcm", dir=path.parent)
            os.close(fd)
            try:
                ds.save_as(tmp, enforce_file_format=True)
                _gdcm_transcode(Path(tmp), syntax)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if syntax == "jpeg-baseline":
            out = pydicom.dcmread(path)
            if "LossyImageCompression" not in out:
                out.LossyImageCompression = "01"
                out.LossyImageCompressionMethod = "ISO_10918_1"
                out.save_as(path)
        return path
    ds.save_as(path, enforce_file_format=True)
    return path
