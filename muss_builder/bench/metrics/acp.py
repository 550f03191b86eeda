"""Anti-copy-paste scores: OUR OWN DEFINITIONS (MuSS names ACP-Var but publishes no formula).

A generator given a reference crop can score well on reference consistency by pasting the
crop unchanged (a "sticker"). Two scores tell that apart from a subject that lives in the shot.

ACP-Var: identity-gated variance of the subject's pose and structure about the reference
    For every generated face ``g`` in the reference's target shot whose identity cosine to the
    reference is at least the gate (so another person's pose never counts as variation), the
    pose vector ``p_g = (yaw, pitch, roll, log s, log a)``: head angles in degrees from the five
    landmarks (``muss_builder.subjects.faces.head_pose``), ``s`` the face height divided by the
    height the reference's face would have if the reference crop were pasted into the script's
    target box (scaled to the box height), ``a`` the face box aspect (w / h). The reference's
    own vector is ``p_ref = (yaw, pitch, roll, 0, log a)``. Then

        ACP-Var = mean_g (1/5) sum_d ((p_gd - p_ref,d) / sigma_d)^2

    with ``sigma = (10 deg, 10 deg, 10 deg, 0.1, 0.1)``: the mean square distance from the
    reference pose in units of "10 degrees / 10 % of size". A variance about the reference,
    not about the shot's own mean, so a subject held still in a pose of its own still counts
    as not-a-copy. Range [0, inf); a sticker scores ~0 (landmark jitter of the encode only);
    higher means less copy-paste. ``None`` when no face passes the gate.

Copy-paste index CP
    With ``theta(a, b) = arccos(cos(a, b))`` the angle between identity embeddings of the
    generated subject (``gen``), the real target frame's subject (``target``, when the script
    was drawn from a real clip) and the reference (``ref``):

        CP = (theta(gen, target) - theta(gen, ref)) / theta(target, ref)

    By the triangle inequality on the sphere CP lies in [-1, 1]: 1 when the generated face is
    the reference (a paste), -1 when it is the target itself, 0 half-way. ``None`` when the
    target and reference are nearly the same picture (``theta(target, ref)`` under
    ``min_angle_deg``): then pasting and being right cannot be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

POSE_NAMES = ("yaw", "pitch", "roll", "log_scale", "log_aspect")
POSE_SIGMA = np.array([10.0, 10.0, 10.0, 0.1, 0.1])


def pose_vector(
    yaw: float,
    pitch: float,
    roll: float,
    box: Sequence[float],
    expected_face_height: float | None = None,
) -> np.ndarray:
    """``(yaw, pitch, roll, log s, log a)`` of a face box ``(x0, y0, x1, y1)`` in pixels;
    ``expected_face_height`` (pixels) is the pasted reference's face height (``None``: this
    is the reference itself, ``s = 1``)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"a face box needs a positive size, got {tuple(box)}")
    scale = 0.0 if expected_face_height is None else math.log(h / expected_face_height)
    return np.array([yaw, pitch, roll, scale, math.log(w / h)], np.float64)


def acp_var(
    generated: np.ndarray,
    reference: np.ndarray,
    identity: Sequence[float] | None = None,
    gate: float = 0.3,
    sigma: np.ndarray = POSE_SIGMA,
) -> float | None:
    """ACP-Var of pose vectors ``generated`` [n, 5] about ``reference`` [5]; rows whose
    ``identity`` cosine to the reference is under ``gate`` are left out."""
    gen = np.atleast_2d(np.asarray(generated, np.float64))
    ref = np.asarray(reference, np.float64)
    if gen.size == 0:
        return None
    if gen.shape[1] != ref.shape[0] or ref.shape[0] != len(sigma):
        raise ValueError(
            f"pose vectors must have {len(sigma)} values, got {gen.shape} and {ref.shape}"
        )
    if identity is not None:
        keep = np.asarray(identity, np.float64) >= gate
        if keep.shape[0] != gen.shape[0]:
            raise ValueError("one identity similarity per generated pose is needed")
        gen = gen[keep]
    if gen.shape[0] == 0:
        return None
    z = (gen - ref) / sigma
    return float(np.mean(np.mean(z**2, axis=1)))


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in radians between two embeddings (normalised here)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return math.acos(max(-1.0, min(1.0, cos)))


def copy_paste_index(
    gen: np.ndarray, target: np.ndarray, ref: np.ndarray, min_angle_deg: float = 5.0
) -> float | None:
    """CP = (theta(gen, target) - theta(gen, ref)) / theta(target, ref), in [-1, 1]."""
    base = angle(target, ref)
    if base < math.radians(min_angle_deg):
        return None
    # the triangle inequality bounds it by 1; rounding may step past by an ulp
    return max(-1.0, min(1.0, (angle(gen, target) - angle(gen, ref)) / base))
