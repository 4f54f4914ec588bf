"""The one registry of pretrained weights: what each backbone needs, and where it may live.

Resolution order: `checkpoints/<folder>/<file>` (or $C2F_CHECKPOINTS), then the library's own cache
(Hugging Face cache for open_clip, torch hub cache for torchvision), then a download through the
library unless offline ($C2F_OFFLINE=1 or $HF_HUB_OFFLINE=1). Missing and offline, the error names
the file and every folder it may be put in.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from c2f.environment import env_flag
from c2f.errors import CheckpointError, MissingWeightsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def checkpoints_dir() -> Path:
    return Path(os.environ.get("C2F_CHECKPOINTS", PROJECT_ROOT / "checkpoints"))


def offline() -> bool:
    return env_flag("C2F_OFFLINE", False) or os.environ.get("HF_HUB_OFFLINE") == "1"


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # registry key
    what: str  # human description
    folder: str  # sub-folder of checkpoints/
    filenames: tuple[str, ...]  # accepted file names, preferred first
    hf_repo: str | None = None  # Hugging Face repo the library downloads from
    url: str | None = None  # torchvision download URL
    sha256_prefix: str | None = None  # known start of the file's sha256 (torchvision names files by it)


REGISTRY: dict[str, WeightsSpec] = {
    "clip:ViT-B-32:openai": WeightsSpec(
        name="clip:ViT-B-32:openai",
        what="CLIP ViT-B/32 (OpenAI weights, open_clip)",
        folder="clip",
        filenames=(
            "open_clip_model.safetensors",  # the file open_clip fetches from the Hugging Face hub
            "open_clip_pytorch_model.bin",
            "ViT-B-32-openai.safetensors",
        ),
        hf_repo="timm/vit_base_patch32_clip_224.openai",
    ),
    "s3d:KINETICS400_V1": WeightsSpec(
        name="s3d:KINETICS400_V1",
        what="S3D Kinetics-400 (torchvision)",
        folder="s3d",
        filenames=("s3d-d76dad2f.pth", "s3d_kinetics400.safetensors"),
        url="https://download.pytorch.org/models/s3d-d76dad2f.pth",
        sha256_prefix="d76dad2f",
    ),
    # MIL-NCE S3D-G trained on HowTo100M (Miech et al. 2020), as used for VALUE's "mil-nce" stream.
    "s3d:howto100m": WeightsSpec(
        name="s3d:howto100m",
        what="MIL-NCE S3D-G HowTo100M (video and text towers)",
        folder="s3d",
        filenames=("s3d_howto100m.pth",),
        url="https://www.rocq.inria.fr/cluster-willow/amiech/howto100m/s3d_howto100m.pth",
    ),
    # Its word vocabulary (a numpy array of words; not a state dict, so never fetched through torch).
    "s3d:howto100m-dict": WeightsSpec(
        name="s3d:howto100m-dict",
        what="MIL-NCE S3D-G HowTo100M word vocabulary",
        folder="s3d",
        filenames=("s3d_dict.npy",),
    ),
}


def _hf_cache_dir() -> Path:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        return Path(HF_HUB_CACHE)
    except Exception:
        return Path.home() / ".cache" / "huggingface" / "hub"


def _torch_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def candidate_places(spec: WeightsSpec) -> list[str]:
    places = [str(checkpoints_dir() / spec.folder / spec.filenames[0])]
    if spec.hf_repo:
        places.append(f"the Hugging Face cache ({_hf_cache_dir()}), repo {spec.hf_repo}")
    if spec.url:
        places.append(str(_torch_hub_dir() / spec.filenames[0]))
    return places


def _spec(name: str) -> WeightsSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise MissingWeightsError(name, name, [f"a known weights name: {sorted(REGISTRY)}"]) from None


def _checked(path: Path, spec: WeightsSpec) -> Path:
    """A truncated or wrong file fails here with its name, not deep inside torch.load."""
    if spec.sha256_prefix and path.name == spec.filenames[0]:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if not h.hexdigest().startswith(spec.sha256_prefix):
            raise CheckpointError(
                f"{path}: sha256 {h.hexdigest()[:8]}... does not match {spec.sha256_prefix} "
                f"(truncated or wrong download?); delete it and put the right {spec.filenames[0]} there"
            )
    return path


def describe_missing(name: str) -> str:
    """What `resolve_weights(name)` says when the weights are nowhere: the file and every place for it."""
    spec = _spec(name)
    return str(MissingWeightsError(spec.what, spec.filenames[0], candidate_places(spec), hint=_HINT))


_HINT = (
    "(C2F is offline or the download failed. To try C2F without weights use the tiny random "
    "models: `c2f extract --preset tiny`, `python app.py --mode tiny`.)"
)


def resolve_weights(name: str) -> Path:
    """Path of a local weights file for `name`, downloading through the library if allowed."""
    spec = _spec(name)
    local = checkpoints_dir() / spec.folder
    for fn in spec.filenames:
        if (local / fn).is_file():
            return _checked(local / fn, spec)
    if spec.hf_repo:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        for fn in spec.filenames[:2]:
            hit = try_to_load_from_cache(spec.hf_repo, fn)
            if isinstance(hit, str):
                return Path(hit)
        if not offline():
            for fn in spec.filenames[:2]:
                try:
                    return Path(hf_hub_download(spec.hf_repo, fn))
                except Exception:  # no network, or the file is not in that repo
                    continue
    if spec.url:
        cached = _torch_hub_dir() / spec.filenames[0]
        if cached.is_file():
            return _checked(cached, spec)
        if not offline():
            import torch

            try:
                torch.hub.load_state_dict_from_url(spec.url, progress=False, check_hash=True, weights_only=True)
                return cached
            except Exception:
                pass
    raise MissingWeightsError(spec.what, spec.filenames[0], candidate_places(spec), hint=_HINT)


# --- model folders (transformers): several files that must come from one place ------------------
@dataclass(frozen=True)
class ModelFolderSpec:
    name: str  # registry key
    what: str  # human description
    folder: str  # sub-folder of checkpoints/, e.g. "whisper/base"
    files: tuple[str, ...]  # every file transformers needs to load it offline
    hf_repo: str  # Hugging Face repo (its cache is searched, and downloaded from unless offline)


_WHISPER_FILES = (
    "config.json",
    "generation_config.json",  # timestamp, language and task token ids: needed for timestamps
    "model.safetensors",
    "preprocessor_config.json",  # log-mel feature extractor
    "tokenizer.json",
    "tokenizer_config.json",
)
_SENTENCE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

MODEL_FOLDERS: dict[str, ModelFolderSpec] = {
    **{
        f"whisper:{size}": ModelFolderSpec(
            name=f"whisper:{size}",
            what=f"Whisper {size} (OpenAI, transformers)",
            folder=f"whisper/{size}",
            files=_WHISPER_FILES,
            hf_repo=f"openai/whisper-{size}",
        )
        for size in ("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo")
    },
    "sentence:all-MiniLM-L6-v2": ModelFolderSpec(
        name="sentence:all-MiniLM-L6-v2",
        what="sentence encoder all-MiniLM-L6-v2 (transformers, mean pooling)",
        folder="sentence/all-MiniLM-L6-v2",
        files=_SENTENCE_FILES,
        hf_repo="sentence-transformers/all-MiniLM-L6-v2",
    ),
}


def _folder_spec(name: str) -> ModelFolderSpec:
    try:
        return MODEL_FOLDERS[name]
    except KeyError:
        raise MissingWeightsError(name, name, [f"a known model name: {sorted(MODEL_FOLDERS)}"]) from None


def _hf_cached_folder(spec: ModelFolderSpec) -> tuple[Path | None, list[str]]:
    """(the cache snapshot folder holding every file, or None; the files it lacks)."""
    from huggingface_hub import try_to_load_from_cache

    found: dict[str, Path] = {}
    for fn in spec.files:
        hit = try_to_load_from_cache(spec.hf_repo, fn)
        if isinstance(hit, str):
            found[fn] = Path(hit)
    missing = [fn for fn in spec.files if fn not in found]
    folders = {p.parent for p in found.values()}
    if not missing and len(folders) == 1:
        return folders.pop(), []
    return None, missing


def describe_missing_folder(name: str, missing: list[str] | None = None) -> str:
    """What `resolve_model_folder(name)` says when the model is nowhere: every missing file, the
    folder to put them in, and the cache repo."""
    spec = _folder_spec(name)
    local = checkpoints_dir() / spec.folder
    missing = missing if missing is not None else [fn for fn in spec.files if not (local / fn).is_file()]
    return str(MissingWeightsError(spec.what, ", ".join(missing), _folder_places(spec), hint=_FOLDER_HINT))


def _folder_places(spec: ModelFolderSpec) -> list[str]:
    local = checkpoints_dir() / spec.folder
    return [
        f"{local}/ (all of: {', '.join(spec.files)})",
        f"the Hugging Face cache ({_hf_cache_dir()}), repo {spec.hf_repo}",
    ]


_FOLDER_HINT = (
    "(C2F is offline or the download failed. Copy the files from the Hugging Face repo into that "
    "folder; to try C2F without weights use the tiny test models: `--whisper-model tiny-test`, "
    "`python app.py --mode tiny`.)"
)


def resolve_model_folder(name: str) -> Path:
    """A local folder with every file of the transformers model `name`: checkpoints/<folder>/ when
    it holds them all, else the Hugging Face cache, else a download (unless offline). Missing, the
    error names each absent file and where to put it."""
    spec = _folder_spec(name)
    local = checkpoints_dir() / spec.folder
    missing_here = [fn for fn in spec.files if not (local / fn).is_file()]
    if not missing_here:
        return local
    cached, _ = _hf_cached_folder(spec)
    if cached is not None:
        return cached
    if not offline():
        from huggingface_hub import snapshot_download

        try:  # the needed files plus small optional ones (normalizer.json, special tokens)
            return Path(snapshot_download(spec.hf_repo, allow_patterns=[*spec.files, "*.json", "*.txt"]))
        except Exception:  # no network, or the repo moved
            pass
    # Name what the user has to add to the folder they started filling (or every file).
    raise MissingWeightsError(spec.what, ", ".join(missing_here), _folder_places(spec), hint=_FOLDER_HINT)
