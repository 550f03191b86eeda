"""What the captioner needs from the pixels, gathered during the subject stage's keyframe pass.

The keyframe pass already decodes the film once at full quality; the captioner rides along
instead of decoding again: a few extra evenly spaced frames per shot (``motion_frames``) are
selected in the same ffmpeg run, shrunk at once to ``MOTION_WIDTH`` and turned into a camera
motion estimate as soon as the shot's last frame has gone by, so at most one shot's frames are
held at a time. Keyframes also give the lighting facts and the JPEG images a VLM is shown.

With video input on (``video.py``), the same run also selects each shot's clip frames
(``video_fps``, at most ``video_max_frames``), kept as JPEGs within the pixel budget with
their times in the shot: the clip a video VLM is shown costs no decode of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from muss_builder.captions.backends import shrink
from muss_builder.captions.camera import CameraMotion, camera_motion
from muss_builder.captions.lighting import Lighting, lighting
from muss_builder.captions.video import clip_frames, fit_pixels
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe, keyframe_frames

MOTION_WIDTH = 192  # enough texture for optical flow, cheap to hold


@dataclass
class ShotPixels:
    motion: CameraMotion | None = None
    lighting: Lighting | None = None
    images: list[bytes] = field(default_factory=list)  # JPEG keyframes for a VLM
    video: list[bytes] = field(default_factory=list)  # JPEG clip frames for a video VLM
    video_times: list[float] = field(default_factory=list)  # their seconds from shot start
    duration: float = 0.0  # the shot's seconds, for the clip's timing

    def image_hashes(self) -> list[str]:
        return [hashlib.sha256(b).hexdigest()[:16] for b in self.images]


@dataclass
class VideoSampling:
    """How clip frames are picked and sized (``CaptionsConfig.video_*``)."""

    fps: float = 2.0
    max_frames: int = 16
    max_pixels: int = 448 * 448


class ShotPixelCollector:
    """Fed every decoded frame in film order; keeps per-shot facts, never whole shots."""

    def __init__(
        self,
        shots: list[Shot],
        frame_pts: np.ndarray,
        motion_per_shot: int = 8,
        images_per_shot: int = 2,
        image_side: int = 448,
        video: VideoSampling | None = None,
    ) -> None:
        self.frame_pts = frame_pts
        self.motion = keyframe_frames(shots, motion_per_shot)
        self.images_per_shot = images_per_shot
        self.image_side = image_side
        self.video = video
        self.clips = clip_frames(shots, video.fps, video.max_frames) if video else {}
        # a clip's times count from the shot's first frame, as the shot's own clock
        last = len(frame_pts) - 1
        self._starts = {s.index: float(frame_pts[min(s.start_frame, last)]) for s in shots}
        self.pixels: dict[int, ShotPixels] = {
            s.index: ShotPixels(duration=round(s.duration_seconds, 3)) for s in shots
        }
        self._shot: int | None = None
        self._frames: list[np.ndarray] = []
        self._times: list[float] = []
        self._lit: list[np.ndarray] = []

    def wanted(self) -> dict[int, list[int]]:
        """Frames the keyframe pass must decode for the captioner, besides the keyframes."""
        if not self.clips:
            return self.motion
        return {
            shot: sorted(set(frames) | set(self.clips.get(shot, ())))
            for shot, frames in self.motion.items()
        }

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        """One decoded frame; ``is_keyframe`` when the subject models look at it too."""
        if keyframe.shot != self._shot:
            self._finish_shot()
            self._shot = keyframe.shot
        image = keyframe.image
        if keyframe.frame in self.motion.get(keyframe.shot, ()):
            h, w = image.shape[:2]
            size = (MOTION_WIDTH, max(2, round(h * MOTION_WIDTH / w)))
            self._frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            self._times.append(float(self.frame_pts[keyframe.frame]))
        if self.video and keyframe.frame in self.clips.get(keyframe.shot, ()):
            self._add_clip_frame(keyframe)
        if is_keyframe:
            self._lit.append(shrink(image, 256))
            pixels = self.pixels[keyframe.shot]
            if len(pixels.images) < self.images_per_shot:
                ok, buf = cv2.imencode(
                    ".jpg", shrink(image, self.image_side), [cv2.IMWRITE_JPEG_QUALITY, 90]
                )
                if ok:
                    pixels.images.append(buf.tobytes())

    def _add_clip_frame(self, keyframe: Keyframe) -> None:
        assert self.video is not None
        pixels = self.pixels[keyframe.shot]
        small = fit_pixels(keyframe.image, self.video.max_pixels)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:  # a frame that cannot be encoded leaves a shorter clip, not a failed shot
            pixels.video.append(buf.tobytes())
            t = float(self.frame_pts[keyframe.frame]) - self._starts[keyframe.shot]
            pixels.video_times.append(round(max(t, 0.0), 3))

    def finish(self) -> dict[int, ShotPixels]:
        self._finish_shot()
        return self.pixels

    def _finish_shot(self) -> None:
        if self._shot is None:
            return
        pixels = self.pixels[self._shot]
        pixels.motion = camera_motion(self._frames, self._times)
        if self._lit:
            pixels.lighting = lighting(self._lit)
        self._frames, self._times, self._lit = [], [], []
        self._shot = None
