"""Parametric 3-D head and latex-mask surfaces as height fields in head coordinates.

Head coordinates (cm): origin at the head centre, x towards the subject's left (image right
when the face looks into the camera), y downwards, z into the head. The visible surface is
``z = -height(x, y)``; everything is sampled on one texture grid (``GRID_PITCH_CM``) so the
renderer can shade in texture space and look up per pixel with ``cv2.remap``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

GRID_PITCH_CM = 0.1
SHADING_STEP = 2  # shading grid = every second texel
GRID_U0, GRID_U1 = -9.0, 9.0
GRID_V0, GRID_V1 = -12.5, 18.0
NO_SURFACE = -50.0  # height outside the head: rays never reach it
GRID_U = np.arange(GRID_U0, GRID_U1 + 1e-6, GRID_PITCH_CM, dtype=np.float32)
GRID_V = np.arange(GRID_V0, GRID_V1 + 1e-6, GRID_PITCH_CM, dtype=np.float32)
CORNEA_RADIUS_CM = 0.78
IRIS_RADIUS_CM = 0.6


@dataclass(frozen=True)
class FaceShape:
    """Geometry parameters of one face (cm); eye corners follow from the eye parameters."""

    head_half_width: float
    head_top: float
    face_depth: float
    chin: float
    jaw_half_width: float
    eye_spacing: float  # distance of each eye centre from the mid-line
    eye_level: float
    eye_half_width: float
    lid_upper: float
    lid_lower: float
    canthal_tilt: float
    socket_depth: float
    brow_height: float
    nose_height: float
    nose_length: float
    nose_width: float
    cheek_height: float
    lip_height: float
    chin_height: float

    @property
    def nose_tip(self) -> float:
        """V coordinate of the nose tip."""
        return self.eye_level + self.nose_length

    @property
    def mouth(self) -> float:
        """V coordinate of the mouth line."""
        return self.nose_tip + 2.2


@dataclass(frozen=True)
class Identity:
    """A synthetic live subject: face shape plus NIR and visible-light appearance."""

    subject_id: int
    shape: FaceShape
    skin_nir: float
    skin_visible: float
    hair_nir: float
    hair_visible: float
    hairline: float
    brow_darkness: float
    beard: float
    iris_nir: float
    iris_visible: float
    bright_pupil_gain: float
    pupil_scale: float
    skin_specular: float
    shirt_nir: float
    glasses: bool
    texture_seed: int


@dataclass(frozen=True)
class MaskModel:
    """A latex mask (thesis 3.2.2.2): its own face shape and a rubber-like material."""

    mask_id: int
    shape: FaceShape
    latex_albedo: float
    paint_contrast: float
    specular: float
    thickness: float
    opening_width: float
    opening_height: float
    hair_albedo: float | None
    texture_seed: int


@dataclass(frozen=True)
class EyeGeometry:
    """One eye opening in head coordinates (cm); corners lie on the lid junctions."""

    outer: tuple[float, float]
    inner: tuple[float, float]
    lid_upper: float
    lid_lower: float

    @property
    def centre(self) -> np.ndarray:
        """Mid-point of the two corners."""
        return (np.array(self.outer) + np.array(self.inner)) / 2

    def local(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Coordinates along (x) and across (y, downwards) the corner line, and half-width."""
        outer, inner = np.array(self.outer), np.array(self.inner)
        axis = (outer - inner) / np.linalg.norm(outer - inner)
        across = np.array([-axis[1], axis[0]])
        if across[1] < 0:
            across = -across
        centre = self.centre
        du, dv = u - centre[0], v - centre[1]
        half_width = float(np.linalg.norm(outer - inner) / 2)
        return du * axis[0] + dv * axis[1], du * across[0] + dv * across[1], half_width


@dataclass(frozen=True)
class ShadingGrid:
    """Every second texel of a surface, as separate float32 components for fast shading.

    Shading varies smoothly, so it is computed on this 2 mm grid; albedo and eyes keep 1 mm.
    """

    points: tuple[np.ndarray, np.ndarray, np.ndarray]
    normals: tuple[np.ndarray, np.ndarray, np.ndarray]
    specular: np.ndarray
    shininess: np.ndarray
    ambient_occlusion: np.ndarray

    @classmethod
    def subsample(cls, height: np.ndarray, normals: np.ndarray, specular: np.ndarray,
                  shininess: np.ndarray, ambient_occlusion: np.ndarray) -> 'ShadingGrid':
        """Take texels (2i, 2j): coarse texel i sits exactly at fine texel 2i."""
        u, v = _grid()
        pick = (slice(None, None, SHADING_STEP), slice(None, None, SHADING_STEP))
        return cls(
            tuple(np.ascontiguousarray(a[pick], np.float32) for a in (u, v, -height)),
            tuple(np.ascontiguousarray(normals[pick][..., k]) for k in range(3)),
            np.ascontiguousarray(specular[pick]), np.ascontiguousarray(shininess[pick]),
            np.ascontiguousarray(ambient_occlusion[pick]))


@dataclass
class Surface:
    """Texture-space description of what the camera can see of a head (live or masked)."""

    height: np.ndarray
    normals: np.ndarray  # (H, W, 3) outward unit normals in head coordinates
    albedo: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray
    translucency: np.ndarray
    ambient_occlusion: np.ndarray
    shading: ShadingGrid
    eyes: tuple[EyeGeometry, EyeGeometry]  # subject's right eye first
    iris_albedo: float
    sclera_albedo: float
    bright_pupil_gain: float
    glasses: bool

    @property
    def max_height(self) -> float:
        """Largest outward height (for bounding the ray march)."""
        return float(self.height.max())


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([abs(int(k)) for k in keys])


def sample_shape(rng: np.random.Generator) -> FaceShape:
    """Draw a plausible adult face geometry."""
    return FaceShape(
        head_half_width=rng.uniform(7.0, 8.0),
        head_top=rng.uniform(-12.0, -11.0),
        face_depth=rng.uniform(8.8, 9.8),
        chin=rng.uniform(9.0, 10.2),
        jaw_half_width=rng.uniform(3.0, 4.2),
        eye_spacing=rng.uniform(2.95, 3.4),
        eye_level=rng.uniform(-1.6, -0.8),
        eye_half_width=rng.uniform(1.25, 1.5),
        lid_upper=rng.uniform(0.42, 0.6),
        lid_lower=rng.uniform(0.28, 0.4),
        canthal_tilt=rng.uniform(-0.05, 0.2),
        socket_depth=rng.uniform(0.8, 1.4),
        brow_height=rng.uniform(0.3, 0.7),
        nose_height=rng.uniform(1.9, 2.9),
        nose_length=rng.uniform(4.2, 5.2),
        nose_width=rng.uniform(0.9, 1.3),
        cheek_height=rng.uniform(0.3, 0.8),
        lip_height=rng.uniform(0.3, 0.6),
        chin_height=rng.uniform(0.3, 0.7),
    )


@lru_cache(maxsize=512)
def make_identity(subject_id: int, root_seed: int) -> Identity:
    """Deterministic identity for a subject number (independent of the protocol layout)."""
    rng = _rng(root_seed, 101, subject_id)
    skin_visible = rng.uniform(0.12, 0.55)
    return Identity(
        subject_id=subject_id,
        shape=sample_shape(rng),
        # melanin absorbs little in the NIR: skin is bright and varies less than in visible
        skin_nir=rng.uniform(0.48, 0.66),
        skin_visible=skin_visible,
        hair_nir=rng.uniform(0.12, 0.4),
        hair_visible=rng.uniform(0.03, 0.35),
        hairline=rng.uniform(-8.0, -5.8),
        brow_darkness=rng.uniform(0.3, 0.6),
        beard=float(rng.uniform(0.0, 1.0) if rng.random() < 0.3 else 0.0),
        iris_nir=rng.uniform(0.22, 0.42),
        iris_visible=rng.uniform(0.04, 0.3),
        bright_pupil_gain=float(rng.lognormal(np.log(0.55), 0.45)),
        pupil_scale=rng.uniform(0.85, 1.15),
        skin_specular=rng.uniform(0.04, 0.14),
        shirt_nir=rng.uniform(0.15, 0.75),
        glasses=bool(rng.random() < 0.25),
        texture_seed=int(rng.integers(2**31)),
    )


@lru_cache(maxsize=64)
def make_mask(mask_id: int, root_seed: int) -> MaskModel:
    """Deterministic latex mask for a mask number; each has its own shape and material."""
    rng = _rng(root_seed, 202, mask_id)
    return MaskModel(
        mask_id=mask_id,
        shape=sample_shape(rng),
        latex_albedo=rng.uniform(0.55, 0.8),
        paint_contrast=rng.uniform(0.08, 0.3),
        specular=rng.uniform(0.12, 0.3),
        thickness=rng.uniform(0.25, 0.6),
        opening_width=rng.uniform(1.2, 1.45),
        opening_height=rng.uniform(1.5, 2.2),
        hair_albedo=float(rng.uniform(0.15, 0.45)) if rng.random() < 0.5 else None,
        texture_seed=int(rng.integers(2**31)),
    )


def _gauss(u: np.ndarray, v: np.ndarray, cu: float, cv: float, su: float, sv: float) -> np.ndarray:
    return np.exp(-0.5 * (((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(GRID_U, GRID_V)


def eye_geometry(shape: FaceShape) -> tuple[EyeGeometry, EyeGeometry]:
    """Right (image-left, x < 0) and left eye openings; outer corners raised by the tilt."""
    eyes = []
    for side in (-1.0, 1.0):
        centre_u = side * shape.eye_spacing
        outer = (centre_u + side * shape.eye_half_width, shape.eye_level - shape.canthal_tilt / 2)
        inner = (centre_u - side * shape.eye_half_width, shape.eye_level + shape.canthal_tilt / 2)
        eyes.append(EyeGeometry(outer, inner, shape.lid_upper, shape.lid_lower))
    return eyes[0], eyes[1]


def head_height(shape: FaceShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Outward height of the head, face features and neck (cm); NO_SURFACE outside."""
    s = shape
    # half-width: skull ellipse above the brows, constant at the cheeks, tapering jaw
    top_span = -2.0 - s.head_top
    skull = s.head_half_width * np.sqrt(np.clip(1 - ((v + 2.0) / top_span) ** 2, 0, 1))
    jaw = s.head_half_width - (s.head_half_width - s.jaw_half_width) * _smoothstep(
        (v - s.eye_level - 1.0) / (s.chin - s.eye_level - 1.0)) ** 1.3
    # the jaw line rounds off into the chin instead of ending in a flat edge
    chin_round = np.sqrt(np.clip(1 - ((v - s.chin + 3.0) / 3.6) ** 2, 0, 1))
    jaw = np.where(v > s.chin - 3.0, jaw * chin_round, jaw)
    half_width = np.where(v < -2.0, skull, np.where(v <= s.chin + 0.6, jaw, 0.0))
    # mid-line depth: skull ellipse on top, flat face, steep drop under the chin
    crown = s.face_depth * np.sqrt(np.clip(1 - ((v + 3.0) / (-3.0 - s.head_top)) ** 2, 0, 1))
    under_chin = s.face_depth * np.cos(np.clip((v - (s.chin - 1.2)) / 2.0, 0, 1) * np.pi / 2)
    depth = np.where(v < -3.0, crown, np.where(v < s.chin - 1.2, s.face_depth, under_chin))
    ratio = np.abs(u) / np.maximum(half_width, 1e-3)
    inside = (ratio < 1) & (half_width > 0) & (depth > 0)
    # finite slope at the rim: an infinitely steep rim aliases into stripes at 45 deg yaw
    face = np.where(inside, depth * np.clip(1 - ratio**3.5, 0, 1), NO_SURFACE)
    neck_radius = 4.9
    neck = np.where((v > 3.0) & (v < 15.5) & (np.abs(u) < neck_radius),
                    3.2 * np.sqrt(np.clip(1 - (u / neck_radius) ** 2, 0, 1)), NO_SURFACE)
    base = np.maximum(face, neck)
    return np.where(base > NO_SURFACE, base + _features(s, u, v) * (face > 0), base)


def _features(s: FaceShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Relief of sockets, eyeballs, brows, nose, cheeks, lips and chin (cm)."""
    ey, tip, mouth = s.eye_level, s.nose_tip, s.mouth
    relief = np.zeros_like(u)
    for side in (-1.0, 1.0):
        eu = side * s.eye_spacing
        relief -= s.socket_depth * _gauss(u, v, eu, ey, 1.5, 1.0)
        relief += 0.7 * s.socket_depth * _gauss(u, v, eu, ey + 0.05, 1.05, 0.55)  # eyeball
        relief += s.brow_height * _gauss(u, v, eu - side * 0.2, ey - 1.6, 1.9, 0.55)
        relief += s.cheek_height * _gauss(u, v, side * 3.5, ey + 2.2, 1.8, 1.5)
        relief -= 0.3 * _gauss(u, v, side * 4.6, s.mouth, 1.2, 1.6)  # hollow below cheekbones
        relief += 0.6 * _gauss(u, v, side * 1.25, tip + 0.1, 0.55, 0.45)  # nose wings
        relief -= 0.45 * _gauss(u, v, side * 6.3, ey - 1.5, 1.0, 2.0)  # temples
    along = np.clip((v - (ey - 0.6)) / (tip - ey + 0.6), 0, 1)
    nose_amp = s.nose_height * (0.2 + 0.8 * along**1.4)
    nose_amp = np.where(v > tip, s.nose_height * np.exp(-0.5 * ((v - tip) / 0.45) ** 2), nose_amp)
    nose_amp = np.where(v < ey - 0.6, 0.2 * s.nose_height * np.exp(
        -0.5 * ((v - ey + 0.6) / 0.8) ** 2), nose_amp)
    nose_sigma = s.nose_width * (0.3 + 0.5 * along)
    relief += nose_amp * np.exp(-0.5 * (u / nose_sigma) ** 2)
    relief += s.lip_height * _gauss(u, v, 0, mouth - 0.35, 1.25, 0.33)
    relief += 0.85 * s.lip_height * _gauss(u, v, 0, mouth + 0.4, 1.1, 0.35)
    relief -= 0.15 * _gauss(u, v, 0, mouth, 1.6, 0.1)
    relief += 0.35 * _gauss(u, v, 0, mouth - 1.1, 0.35, 0.5)  # philtrum
    relief += s.chin_height * _gauss(u, v, 0, mouth + 2.9, 1.8, 1.0)
    return relief


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise on the texture grid."""
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return field / max(float(field.std()), 1e-6)


def _brows(s: FaceShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Soft mask of the eyebrows: arcs above each eye."""
    mask = np.zeros_like(u)
    for side in (-1.0, 1.0):
        du = u - side * (s.eye_spacing - 0.1)
        arc_v = s.eye_level - 1.35 - 0.35 * (1 - (du / 2.0) ** 2)
        mask = np.maximum(mask, np.exp(-0.5 * ((v - arc_v) / 0.28) ** 2)
                          * np.exp(-0.5 * (du / 1.3) ** 4))
    return mask


def _hair(identity_hairline: float, s: FaceShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Soft mask of scalp hair: above a curved hairline and down the sides to the ears."""
    hairline = (identity_hairline - 0.6 * (u / 4.0) ** 2
                + 1.2 * (np.abs(u) / s.head_half_width) ** 6)
    top = v < hairline
    sides = (np.abs(u) > 0.86 * s.head_half_width) & (v < s.eye_level + 1.0)
    return cv2.GaussianBlur((top | sides).astype(np.float32), (0, 0), 1.5)


def build_live_surface(identity: Identity, visible: bool = False) -> Surface:
    """Texture-space surface of a bare face; ``visible`` gives visible-light albedos."""
    return _live_surface_cached(identity, visible)


@lru_cache(maxsize=96)
def _live_surface_cached(identity: Identity, visible: bool) -> Surface:
    s = identity.shape
    u, v = _grid()
    rng = _rng(identity.texture_seed, int(visible))
    height = head_height(s, u, v).astype(np.float32)
    skin = identity.skin_visible if visible else identity.skin_nir
    hair_albedo = identity.hair_visible if visible else identity.hair_nir
    # fine texture fades where the height field is steep: there one texel spans much skin
    # and the noise would be stretched into streaks
    facing = np.clip(-surface_normals(height)[..., 2], 0, 1) ** 2
    pores = 0.035 * facing * _noise(rng, u.shape, 0.7) + 0.05 * _noise(rng, u.shape, 12.0)
    albedo = skin * (1 + pores)
    lips = _gauss(u, v, 0, s.mouth, 1.3, 0.45)
    albedo *= 1 - (0.35 if visible else 0.08) * lips
    albedo *= 1 - 0.35 * _gauss(u, v, 0, s.mouth, 1.5, 0.07)  # the mouth line
    brow_strength = min(0.9, identity.brow_darkness * (2.0 if visible else 1.0))
    albedo *= 1 - brow_strength * _brows(s, u, v)
    stubble = identity.beard * (_gauss(u, v, 0, s.mouth + 1.8, 3.5, 2.2)
                                + 0.7 * _gauss(u, v, 0, s.mouth - 0.9, 1.6, 0.35))
    albedo *= 1 - (0.55 if visible else 0.3) * np.clip(stubble, 0, 1)
    for side in (-1.0, 1.0):  # nostrils: dark holes seen from below
        nostril = ((u - side * 0.55) / 0.3) ** 2 + ((v - s.nose_tip - 0.55) / 0.16) ** 2 < 1
        albedo = np.where(nostril, 0.12, albedo)
    hair = _hair(identity.hairline, s, u, v)
    strands = 1 + 0.25 * cv2.GaussianBlur(rng.standard_normal(u.shape).astype(np.float32),
                                          (0, 0), sigmaX=0.6, sigmaY=6.0)
    albedo = albedo * (1 - hair) + hair * hair_albedo * strands
    shirt = _smoothstep((v - 13.0) / 0.4)
    albedo = albedo * (1 - shirt) + shirt * identity.shirt_nir * (1 + 0.1 * pores)
    if identity.glasses:
        albedo *= 1 - 0.85 * _glasses_frame(s, u, v)
    oily = 1 + 1.5 * _gauss(u, v, 0, s.nose_tip - 1.5, 0.8, 2.0) + _gauss(u, v, 0, -5, 3.5, 1.5)
    specular = identity.skin_specular * oily * (1 - hair) + 0.04 * hair
    shininess = 22 * (1 - hair) + 8 * hair + 10 * lips
    translucency = 0.75 * (1 - hair) + 0.2 * hair
    return _surface(
        height=height,
        albedo=np.clip(albedo, 0.01, 0.95),
        specular=specular,
        shininess=shininess,
        translucency=translucency,
        eyes=eye_geometry(s),
        iris_albedo=identity.iris_visible if visible else identity.iris_nir,
        sclera_albedo=0.75 if visible else 0.5,
        bright_pupil_gain=0.0 if visible else identity.bright_pupil_gain,
        glasses=identity.glasses,
    )


def _glasses_frame(s: FaceShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rims around both eyes and the bridge, drawn on the skin (frames are thin)."""
    rim = np.zeros_like(u)
    for side in (-1.0, 1.0):
        r = np.sqrt(((u - side * s.eye_spacing) / 2.3) ** 2 + ((v - s.eye_level - 0.2) / 1.7) ** 2)
        rim = np.maximum(rim, np.exp(-0.5 * ((r - 1.0) / 0.06) ** 2))
    bridge = _gauss(u, v, 0, s.eye_level - 0.4, 0.9, 0.12) * (np.abs(u) < s.eye_spacing - 1.8)
    return np.clip(np.maximum(rim, bridge), 0, 1)


def _surface(height: np.ndarray, albedo: np.ndarray, specular: np.ndarray,
             shininess: np.ndarray, translucency: np.ndarray, **eye_fields) -> Surface:
    """Assemble a Surface: float32 textures, normals, occlusion and the shading grid."""
    height = height.astype(np.float32)
    normals = surface_normals(height)
    occlusion = _ambient_occlusion(height)
    specular, shininess = specular.astype(np.float32), shininess.astype(np.float32)
    return Surface(
        height=height, normals=normals, albedo=albedo.astype(np.float32), specular=specular,
        shininess=shininess, translucency=translucency.astype(np.float32),
        ambient_occlusion=occlusion,
        shading=ShadingGrid.subsample(height, normals, specular, shininess, occlusion),
        **eye_fields)


def surface_normals(height: np.ndarray) -> np.ndarray:
    """Outward normals of ``z = -height``: (-dh/du, -dh/dv, -1) normalised."""
    # a slightly smoothed copy tames the infinitely steep rim of the superellipse profile
    smooth = cv2.GaussianBlur(np.maximum(height, -1.0), (0, 0), 1.2)
    grad_v, grad_u = np.gradient(smooth, GRID_PITCH_CM)
    normals = np.stack([-grad_u, -grad_v, -np.ones_like(height)], axis=-1)
    return (normals / np.linalg.norm(normals, axis=-1, keepdims=True)).astype(np.float32)


def _ambient_occlusion(height: np.ndarray) -> np.ndarray:
    """Cavities (sockets, nostrils, mouth) receive less diffuse ambient light."""
    valid = np.maximum(height, 0)
    cavity = cv2.GaussianBlur(valid, (0, 0), 8) - valid
    return np.clip(1 - 0.15 * np.maximum(cavity, 0), 0.45, 1).astype(np.float32)


@lru_cache(maxsize=48)
def build_mask_surface(mask: MaskModel, wearer: Identity) -> Surface:
    """Wearer's head covered by a latex mask with sharp-edged openings at the real eyes."""
    live = build_live_surface(wearer)
    u, v = _grid()
    rng = _rng(mask.texture_seed)
    # the mask's own shape, laid out around the wearer's eyes so the openings fit
    shape = replace(mask.shape, eye_spacing=wearer.shape.eye_spacing,
                    eye_level=wearer.shape.eye_level, eye_half_width=wearer.shape.eye_half_width)
    mask_height = np.maximum(head_height(shape, u, v), live.height + mask.thickness)
    mask_height = np.where(live.height > NO_SURFACE, mask_height, NO_SURFACE)
    openings = np.zeros(u.shape, bool)
    for eye in live.eyes:
        openings |= _mask_opening(eye, mask, u, v)
    height = np.where(openings, live.height, mask_height).astype(np.float32)
    albedo = mask.latex_albedo * (1 + 0.04 * _noise(rng, u.shape, 10.0))
    paint = _brows(shape, u, v) + _gauss(u, v, 0, shape.mouth, 1.6, 0.45)
    albedo *= 1 - mask.paint_contrast * paint
    if mask.hair_albedo is not None:
        hair = _hair(shape.head_top + 5.0, shape, u, v)
        albedo = albedo * (1 - hair) + hair * mask.hair_albedo
    return _surface(
        height=height,
        albedo=np.where(openings, live.albedo, np.clip(albedo, 0.02, 0.95)),
        specular=np.where(openings, live.specular, mask.specular),
        shininess=np.where(openings, live.shininess, 14.0),
        translucency=np.where(openings, live.translucency, 0.2),
        eyes=live.eyes,
        iris_albedo=live.iris_albedo,
        sclera_albedo=live.sclera_albedo,
        bright_pupil_gain=live.bright_pupil_gain,
        glasses=False,
    )


def _mask_opening(eye: EyeGeometry, mask: MaskModel, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Elliptical hole a little larger than the eye, so real skin shows around it."""
    x, y, half_width = eye.local(u, v)
    return (x / (half_width * mask.opening_width)) ** 2 + (
        (y - 0.05) / (0.5 * (eye.lid_upper + eye.lid_lower) * mask.opening_height)) ** 2 < 1


def texture_lookup_maps(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``cv2.remap`` maps from head coordinates (cm) to texture-grid pixels."""
    return (((u - GRID_U0) / GRID_PITCH_CM).astype(np.float32),
            ((v - GRID_V0) / GRID_PITCH_CM).astype(np.float32))
