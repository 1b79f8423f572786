"""Physically motivated renderer of multi-flash NIR frames (numpy + OpenCV, no GPU).

Geometry (camera coordinates, cm): x to image right, y down, z along the optical axis.
The camera looks up at the face from about 35 deg below the face line (thesis 3.1). The
front flash is at the lens, the *right* flash 10 cm to the subject's right (x = -10, image
left) and the *left* flash at x = +10: the right flash therefore lights the image-left half
of a face more and the nose casts its thin shadow towards image right. The halogen lamp
stands 1 m to the subject's left (+x). Frames of one cycle are 1/120 s apart.

Per cycle the renderer traces each pixel once (height-field ray march for heads, closed form
for paper and screens), shades the surface for every light in texture space, then builds
the four frames: ambient + that frame's flash, bright pupil and corneal glints, subsurface
softening of skin, small rigid head motion, optics, exposure and sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
import zlib

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, RIGHT_FLASH_IMAGE_SIDE, Phase
from antispoof_ros.offline.synthetic.face_model import (
    CORNEA_RADIUS_CM,
    GRID_U0,
    GRID_V0,
    IRIS_RADIUS_CM,
    NO_SURFACE,
    SHADING_STEP,
    EyeGeometry,
    Surface,
    build_live_surface,
    build_mask_surface,
    make_identity,
    make_mask,
    texture_lookup_maps,
)
from antispoof_ros.offline.synthetic.scene import (
    CROP_MODE,
    FrameTruth,
    Lighting,
    Pose,
    PrintKind,
    RenderedCycle,
    RenderMode,
    ScenarioSpec,
    Species,
)

FOCAL_PX = 1365.0  # 8 mm lens on the 5.86 um pixels of an acA1920-155um
SENSOR_WIDTH, SENSOR_HEIGHT = 1920, 1200
FRAME_INTERVAL_S = 1.0 / 120.0
CAMERA_ELEVATION_DEG = 35.0
FLASH_OFFSET_CM = 10.0
REFERENCE_DISTANCE_CM = 65.0  # a flash gives irradiance 1.0 at this distance, normal incidence
FLASH_POSITIONS_CM: dict[Phase, tuple[float, float, float]] = {
    Phase.FRONT: (0.0, 0.0, 0.0),
    Phase.RIGHT: (RIGHT_FLASH_IMAGE_SIDE * FLASH_OFFSET_CM, 0.0, 0.0),
    Phase.LEFT: (-RIGHT_FLASH_IMAGE_SIDE * FLASH_OFFSET_CM, 0.0, 0.0),
}
# (yaw, pitch) of the head in camera coordinates; yaw > 0 turns to the subject's right
POSE_ANGLES_DEG: dict[Pose, tuple[float, float]] = {
    Pose.AHEAD: (0.0, -CAMERA_ELEVATION_DEG),
    Pose.RIGHT45: (45.0, -CAMERA_ELEVATION_DEG),
    Pose.LEFT45: (-45.0, -CAMERA_ELEVATION_DEG),
    Pose.CAMERA: (0.0, 0.0),
}
PUPIL_RADIUS_CM: dict[Lighting, tuple[float, float]] = {
    Lighting.OFFICE: (0.12, 0.2),
    Lighting.DARK: (0.26, 0.38),
    Lighting.HALOGEN: (0.11, 0.18),
}
AMBIENT_DIFFUSE: dict[Lighting, float] = {
    Lighting.OFFICE: 0.035, Lighting.DARK: 0.006, Lighting.HALOGEN: 0.04}
PRINT_SOURCE_MODE = RenderMode('print-source', 288, 352, 0.5, False)
SHADOW_STEPS_CM = 0.3 * 1.3 ** np.arange(12)
PRINT_CONTENT_STREAM = 2**31  # random stream of a print's content, apart from its cycles


@dataclass(frozen=True)
class Light:
    """Point light; ``power`` is the irradiance it gives at REFERENCE_DISTANCE_CM."""

    position: np.ndarray
    power: float
    casts_shadows: bool

    def irradiance_scale(self, points: np.ndarray) -> np.ndarray:
        """Inverse-square falloff factor at the given (..., 3) points."""
        d2 = np.sum((self.position - points) ** 2, axis=-1)
        return self.power * REFERENCE_DISTANCE_CM**2 / np.maximum(d2, 1.0)


@dataclass
class _Body:
    """A rigid object in the scene: pose, motion, and landmarks in its own coordinates."""

    rotation: np.ndarray
    translation: np.ndarray
    angular_velocity: np.ndarray  # rad/s, camera axes
    velocity: np.ndarray  # cm/s
    corners: np.ndarray  # (4, 3) eye corners, EyeCornerPoints order
    outline: np.ndarray  # (N, 3) points whose projections bound the face box

    def pose_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Rotation and translation after ``t`` seconds of rigid motion."""
        delta, _ = cv2.Rodrigues(self.angular_velocity * t)
        return delta @ self.rotation, self.translation + self.velocity * t

    def swayed(self, t: float, period_s: float) -> _Body:
        """The body ``t`` seconds into a periodic sway that starts with its velocities.

        The displacement is velocity * period / (2 pi) * sin(2 pi t / period): the drawn
        velocity at t = 0, bounded (a few millimetres and degrees), and zero again after
        each period.
        """
        phase = 2 * np.pi * t / period_s
        reach = period_s / (2 * np.pi) * np.sin(phase)
        rotation, translation = self.pose_at(reach)
        speed = np.cos(phase)  # d(reach)/dt: the motion within the cycle
        return replace(self, rotation=rotation, translation=translation,
                       angular_velocity=self.angular_velocity * speed,
                       velocity=self.velocity * speed)


def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R = Rx(pitch) Ry(yaw) Rz(roll): yaw about the neck, then pitch relative to the camera."""
    y, p, r = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rx @ ry @ rz


def project(points: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N, 3) camera points to full-sensor pixels."""
    return np.stack([FOCAL_PX * points[:, 0] / points[:, 2] + (SENSOR_WIDTH - 1) / 2,
                     FOCAL_PX * points[:, 1] / points[:, 2] + (SENSOR_HEIGHT - 1) / 2], axis=1)


def scenario_rng(spec: ScenarioSpec, cycle_index: int, root_seed: int) -> np.random.Generator:
    """Random stream of one cycle, independent of which other scenarios are rendered."""
    return np.random.default_rng([root_seed, zlib.crc32(spec.scenario_id.encode()), cycle_index])


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity transform mapping src points onto dst points."""
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    zs = src_c[:, 0] + 1j * src_c[:, 1]
    zd = dst_c[:, 0] + 1j * dst_c[:, 1]
    a = np.vdot(zs, zd) / max(np.vdot(zs, zs).real, 1e-9)
    m = np.array([[a.real, -a.imag, 0.0], [a.imag, a.real, 0.0]])
    m[:, 2] = dst.mean(0) - m[:, :2] @ src.mean(0)
    return m


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


class _Viewport:
    """Pixels being rendered: their sensor positions and camera rays (z = 1)."""

    def __init__(self, origin: tuple[float, float], width: int, height: int, scale: float):
        self.origin, self.width, self.height, self.scale = origin, width, height, scale
        xs = origin[0] + np.arange(width, dtype=np.float32) / scale
        ys = origin[1] + np.arange(height, dtype=np.float32) / scale
        gx, gy = np.meshgrid((xs - (SENSOR_WIDTH - 1) / 2) / FOCAL_PX,
                             (ys - (SENSOR_HEIGHT - 1) / 2) / FOCAL_PX)
        self.rays = np.stack([gx, gy, np.ones_like(gx)], axis=-1).astype(np.float32)
        self.vignetting = (1.0 / (1.0 + gx * gx + gy * gy)) ** 2  # cos^4 of the field angle

    def to_pixels(self, sensor_points: np.ndarray) -> np.ndarray:
        """Sensor (full-resolution) coordinates to this viewport's pixel coordinates."""
        return (sensor_points - np.array(self.origin)) * self.scale


# ----------------------------------------------------------------------------------------
# heads (live faces and masks)


def _remap(texture: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, border: float = 0.0
           ) -> np.ndarray:
    return cv2.remap(texture, map_x.astype(np.float32, copy=False),
                     map_y.astype(np.float32, copy=False), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def trace_heightfield(surface: Surface, rotation: np.ndarray, translation: np.ndarray,
                      rays: np.ndarray, steps: int = 40) -> tuple[np.ndarray, ...]:
    """First intersection of camera rays with the head: (u, v, ray parameter, hit mask).

    Marches from in front of the nose tip to just behind the silhouette plane, then bisects
    the bracketing interval, so occlusion (nose at 45 deg yaw) is handled correctly.
    """
    origin = [float(c) for c in -rotation.T @ translation]
    dirs = rays @ rotation.astype(np.float32)
    du, dv, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    dz = np.maximum(dz, 0.05)
    t_start = (-(surface.max_height + 0.3) - origin[2]) / dz
    t_step = (surface.max_height + 1.3) / dz / steps
    ax, ay = (origin[0] - GRID_U0) / 0.1, (origin[1] - GRID_V0) / 0.1
    bx, by = du / 0.1, dv / 0.1
    height = surface.height

    def inside(t: np.ndarray) -> np.ndarray:
        h = _remap(height, ax + t * bx, ay + t * by, NO_SURFACE)
        return origin[2] + t * dz + h

    # march with in-place increments (this loop dominates the cost of a cycle)
    map_x, map_y = ax + t_start * bx, ay + t_start * by
    depth = origin[2] + t_start * dz
    step_x, step_y, step_z = t_step * bx, t_step * by, t_step * dz
    first = np.zeros(dz.shape, np.float32)  # index of the first step inside the head, 0: none
    for k in range(1, steps + 1):
        map_x += step_x
        map_y += step_y
        depth += step_z
        h = _remap(height, map_x, map_y, NO_SURFACE)
        h += depth
        np.putmask(first, (h > 0) & (first == 0), np.float32(k))
    t_hi = np.where(first > 0, t_start + first * t_step, np.inf).astype(np.float32)
    hit = np.isfinite(t_hi)
    t_hi = np.where(hit, t_hi, t_start)
    t_lo = t_hi - t_step
    for _ in range(6):
        mid = 0.5 * (t_lo + t_hi)
        behind = inside(mid) > 0
        t_hi, t_lo = np.where(behind, mid, t_hi), np.where(behind, t_lo, mid)
    u = np.where(hit, origin[0] + t_hi * du, -100.0).astype(np.float32)
    v = np.where(hit, origin[1] + t_hi * dv, -100.0).astype(np.float32)
    return u, v, t_hi, hit


def _toward_light(light: Light, px: np.ndarray, py: np.ndarray, pz: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit direction from surface points to a point light, and the squared distance.

    The distance is clamped at 1 cm so a light touching the surface stays finite.
    """
    lx, ly, lz = (float(light.position[0]) - px, float(light.position[1]) - py,
                  float(light.position[2]) - pz)
    d2 = np.maximum(lx * lx + ly * ly + lz * lz, 1.0)
    inv = 1.0 / np.sqrt(d2)
    return lx * inv, ly * inv, lz * inv, d2


def _rotate(rotation: np.ndarray, xyz: tuple[np.ndarray, ...], offset: np.ndarray | None = None
            ) -> tuple[np.ndarray, ...]:
    """Rotate (and translate) a vector field given as three component arrays."""
    out = []
    for row in range(3):
        r0, r1, r2 = (float(c) for c in rotation[row])
        value = r0 * xyz[0] + r1 * xyz[1] + r2 * xyz[2]
        out.append(value + float(offset[row]) if offset is not None else value)
    return tuple(out)


def _shadow(surface: Surface, points_h: tuple[np.ndarray, ...],
            light_dir_h: tuple[np.ndarray, ...]) -> np.ndarray:
    """1 where the light reaches the texel, 0 where the head blocks it (softened)."""
    lit = np.ones(points_h[0].shape, np.float32)
    for step in SHADOW_STEPS_CM:
        step = float(step)
        h = _remap(surface.height, (points_h[0] + step * light_dir_h[0] - GRID_U0) / 0.1,
                   (points_h[1] + step * light_dir_h[1] - GRID_V0) / 0.1, NO_SURFACE)
        depth = points_h[2] + step * light_dir_h[2] + h
        lit = np.minimum(lit, np.clip(1.0 - 3.0 * (depth - 0.15), 0, 1))
    return cv2.GaussianBlur(lit, (0, 0), 0.6)


def _shade_texture(surface: Surface, rotation: np.ndarray, translation: np.ndarray,
                   light: Light) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse irradiance and specular radiance on the shading grid under one light."""
    grid = surface.shading
    px, py, pz = _rotate(rotation, grid.points, translation)
    nx, ny, nz = _rotate(rotation, grid.normals)
    lx, ly, lz, d2 = _toward_light(light, px, py, pz)
    n_dot_l = np.clip(nx * lx + ny * ly + nz * lz, 0, 1)
    scale = np.float32(light.power * REFERENCE_DISTANCE_CM**2) / d2
    if light.casts_shadows:
        scale = scale * _shadow(surface, grid.points, _rotate(rotation.T, (lx, ly, lz)))
    inv_view = 1.0 / np.sqrt(px * px + py * py + pz * pz)
    hx, hy, hz = lx - px * inv_view, ly - py * inv_view, lz - pz * inv_view
    n_dot_h = np.clip((nx * hx + ny * hy + nz * hz) / np.sqrt(hx * hx + hy * hy + hz * hz), 0, 1)
    specular = grid.specular * n_dot_h**grid.shininess * scale * (n_dot_l > 0)
    return (n_dot_l * scale).astype(np.float32), specular.astype(np.float32)


def _ambient_texture(surface: Surface, rotation: np.ndarray, level: float) -> np.ndarray:
    """Diffuse room light on the shading grid, mostly from above, reduced in cavities."""
    up = -_rotate(rotation, surface.shading.normals)[1]
    return (level * (0.7 + 0.3 * up) * surface.shading.ambient_occlusion).astype(np.float32)


@dataclass
class _EyeState:
    gaze_offset: np.ndarray  # (2,) cm shift of the iris centre in head coordinates
    pupil_radius: float


def _eye_layers(surface: Surface, u: np.ndarray, v: np.ndarray, eye: _EyeState,
                px_per_cm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel eye albedo, pupil coverage and which eye (0 none, 1 right, 2 left)."""
    albedo = np.zeros_like(u)
    pupil = np.zeros_like(u)
    owner = np.zeros(u.shape, np.uint8)
    edge = 0.7 / px_per_cm
    for index, geometry in enumerate(surface.eyes, start=1):
        centre = geometry.centre
        near = (np.abs(u - centre[0]) < 2.0) & (np.abs(v - centre[1]) < 1.2)
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        if rows.size == 0:
            continue
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        _eye_layer(surface, geometry, u[box], v[box], eye, edge, albedo[box], pupil[box],
                   owner[box], index)
    return albedo, pupil, owner


def _eye_layer(surface: Surface, geometry: EyeGeometry, u: np.ndarray, v: np.ndarray,
               eye: _EyeState, edge: float, albedo: np.ndarray, pupil: np.ndarray,
               owner: np.ndarray, index: int) -> None:
    """Fill one eye's albedo, pupil coverage and owner index into the given views."""
    x, y, half_width = geometry.local(u, v)
    shape = 1 - (x / half_width) ** 2
    opening = (shape > 0) & (y > -geometry.lid_upper * shape) & (y < geometry.lid_lower * shape)
    centre = geometry.centre + eye.gaze_offset
    r = np.hypot(u - centre[0], v - centre[1])
    iris = np.clip((IRIS_RADIUS_CM - r) / edge + 0.5, 0, 1)
    in_pupil = np.clip((eye.pupil_radius - r) / edge + 0.5, 0, 1)
    layer = surface.sclera_albedo * (1 - 0.4 * np.abs(x / half_width) ** 4)
    layer = layer * (1 - iris) + iris * surface.iris_albedo * (0.75 + 0.35 * r / IRIS_RADIUS_CM)
    layer = layer * (1 - in_pupil) + 0.03 * in_pupil
    lash = np.exp(-(((y + geometry.lid_upper * shape) / 0.08) ** 2))
    layer *= 1 - 0.8 * lash
    albedo[opening] = layer[opening]
    pupil[opening] = in_pupil[opening]
    owner[opening] = index


def _splat(image: np.ndarray, centre: np.ndarray, sigma: float, peak: float,
           allowed: np.ndarray | None) -> None:
    """Add a small Gaussian spot (a specular glint) in place, clipped to ``allowed`` pixels."""
    radius = int(np.ceil(3 * sigma)) + 1
    x0, y0 = int(round(centre[0])) - radius, int(round(centre[1])) - radius
    x1, y1 = x0 + 2 * radius + 1, y0 + 2 * radius + 1
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if cx0 >= cx1 or cy0 >= cy1:
        return
    gy, gx = np.mgrid[cy0:cy1, cx0:cx1]
    spot = peak * np.exp(-((gx - centre[0]) ** 2 + (gy - centre[1]) ** 2) / (2 * sigma**2))
    if allowed is not None:
        spot = spot * allowed[cy0:cy1, cx0:cx1]
    image[cy0:cy1, cx0:cx1] += spot


def _surface_height_at(surface: Surface, u: float, v: float) -> float:
    return float(_remap(surface.height, np.array([[(u - GRID_U0) / 0.1]], np.float32),
                        np.array([[(v - GRID_V0) / 0.1]], np.float32), NO_SURFACE)[0, 0])


def _sphere_glint(centre_cam: np.ndarray, radius: float, light: Light) -> np.ndarray:
    """Point on a convex mirror sphere where the light is reflected into the camera."""
    to_camera = -centre_cam / np.linalg.norm(centre_cam)
    to_light = light.position - centre_cam
    to_light /= np.linalg.norm(to_light)
    normal = to_camera + to_light
    return centre_cam + radius * normal / np.linalg.norm(normal)


def _head_glints(surface: Surface, body: _Body, eye: _EyeState, lights: list[Light],
                 view: _Viewport, owner: np.ndarray, image: np.ndarray) -> None:
    """Corneal reflections (and spectacle-lens reflections) of each light, in place."""
    px_per_cm = FOCAL_PX * view.scale / body.translation[2]
    for index, geometry in enumerate(surface.eyes, start=1):
        iris_u, iris_v = geometry.centre + eye.gaze_offset
        surface_z = -_surface_height_at(surface, iris_u, iris_v)
        cornea = body.rotation @ np.array([iris_u, iris_v, surface_z + CORNEA_RADIUS_CM])
        cornea += body.translation
        lens = body.rotation @ np.array([*geometry.centre, surface_z - 1.8 + 9.0])
        lens += body.translation
        for light in lights:
            glint = _sphere_glint(cornea, CORNEA_RADIUS_CM, light)
            pixel = view.to_pixels(project(glint[None]))[0]
            peak = 3.0 * float(light.irradiance_scale(glint))
            _splat(image, pixel, max(0.6, 0.03 * px_per_cm), peak, owner == index)
            if surface.glasses:
                glint = _sphere_glint(lens, 9.0, light)
                offset = body.rotation.T @ (glint - body.translation)
                if ((offset[0] - geometry.centre[0]) / 2.2) ** 2 + (
                        (offset[1] - geometry.centre[1]) / 1.6) ** 2 < 1:
                    pixel = view.to_pixels(project(glint[None]))[0]
                    _splat(image, pixel, max(0.8, 0.1 * px_per_cm),
                           0.8 * float(light.irradiance_scale(glint)), None)


def _head_radiance(surface: Surface, body: _Body, view: _Viewport, flashes: dict[Phase, Light],
                   ambient: list[Light], ambient_level: float, eye: _EyeState,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Linear radiance of the head for each phase of DEFAULT_PATTERN, and its coverage."""
    u, v, _, hit = trace_heightfield(surface, body.rotation, body.translation, view.rays)
    map_x, map_y = texture_lookup_maps(u, v)
    base_diffuse = _ambient_texture(surface, body.rotation, ambient_level)
    base_specular = np.zeros_like(base_diffuse)
    for light in ambient:
        diffuse, specular = _shade_texture(surface, body.rotation, body.translation, light)
        base_diffuse += diffuse
        base_specular += specular
    layers = [base_diffuse, base_specular]
    for phase in DEFAULT_PATTERN[1:]:
        layers.extend(_shade_texture(surface, body.rotation, body.translation, flashes[phase]))
    fine = _remap(np.dstack([surface.albedo, surface.translucency]), map_x, map_y)
    coarse_x, coarse_y = map_x / SHADING_STEP, map_y / SHADING_STEP
    shading = [_remap(np.dstack(layers[i:i + 4]), coarse_x, coarse_y) for i in range(0, 8, 4)]
    per_pixel = np.concatenate(shading, axis=-1)
    albedo, translucency = fine[..., 0], fine[..., 1]
    px_per_cm = FOCAL_PX * view.scale / body.translation[2]
    eye_albedo, pupil, owner = _eye_layers(surface, u, v, eye, px_per_cm)
    in_eye = owner > 0
    albedo = np.where(in_eye, eye_albedo, albedo)
    translucency = np.where(in_eye, 0.0, translucency)
    eye_point = body.translation + body.rotation @ np.array([0.0, surface.eyes[0].centre[1], -8.0])
    blur_sigma = 0.12 * px_per_cm
    frames = []
    for index, phase in enumerate(DEFAULT_PATTERN):
        diffuse, specular = per_pixel[..., 0], per_pixel[..., 1]
        lights = list(ambient)
        if phase is not Phase.DARK:
            channel = 2 * index
            diffuse = diffuse + per_pixel[..., channel]
            specular = specular + per_pixel[..., channel + 1]
            lights.append(flashes[phase])
        radiance = albedo * diffuse + np.where(in_eye, 0.0, specular)
        if phase is Phase.FRONT:  # retro-reflection of the coaxial flash by the retina
            strength = np.clip((eye.pupil_radius - 0.08) / 0.25, 0, 1.3)
            radiance += (surface.bright_pupil_gain * strength
                         * float(flashes[phase].irradiance_scale(eye_point))) * pupil
        blurred = cv2.GaussianBlur(radiance, (0, 0), blur_sigma)
        radiance = radiance + translucency * (blurred - radiance)
        _head_glints(surface, body, eye, lights, view, owner, radiance)
        frames.append(radiance)
    return np.stack(frames), hit.astype(np.float32)


# ----------------------------------------------------------------------------------------
# flat (or slightly bent) media: prints and screens


@dataclass
class _Sheet:
    """A rectangle (width x height cm) in its own coordinates, bent as z = bend * a^2."""

    width: float
    height: float
    bend: float
    reflectance: np.ndarray  # texture sampled by (a, b)
    texture_origin: tuple[float, float]  # (a, b) of texture pixel (0, 0)
    texture_pitch: float
    blank_reflectance: float
    emission: float  # screens: how much of the texture is self-luminous instead of reflected
    gloss: float
    shininess: float
    halftone_pitch: float


def _sheet_radiance(sheet: _Sheet, body: _Body, view: _Viewport, flashes: dict[Phase, Light],
                    ambient: list[Light], ambient_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-phase radiance of a print or screen and its coverage (no 3-D relief, no pupils)."""
    origin = [float(c) for c in -body.rotation.T @ body.translation]
    rays = (view.rays[..., 0], view.rays[..., 1], view.rays[..., 2])
    dirs = _rotate(body.rotation.T, rays)
    dz = np.where(np.abs(dirs[2]) > 1e-3, dirs[2], np.float32(1e-3))
    t = -origin[2] / dz
    for _ in range(3):  # fixed point: intersect the bent sheet
        a = origin[0] + t * dirs[0]
        t = (sheet.bend * a * a - origin[2]) / dz
    a = origin[0] + t * dirs[0]
    b = origin[1] + t * dirs[1]
    covered = (np.abs(a) < sheet.width / 2) & (np.abs(b) < sheet.height / 2) & (t > 0)
    slope = 2 * sheet.bend * a
    norm = 1.0 / np.sqrt(1 + slope * slope)
    nx, ny, nz = _rotate(body.rotation, (slope * norm, np.zeros_like(a), -norm))
    px, py, pz = rays[0] * t, rays[1] * t, rays[2] * t
    inv_view = 1.0 / np.sqrt(px * px + py * py + pz * pz)
    ink = _remap(sheet.reflectance, (a - sheet.texture_origin[0]) / sheet.texture_pitch,
                 (b - sheet.texture_origin[1]) / sheet.texture_pitch, sheet.blank_reflectance)
    # the camera integrates a halftone screen much finer than a pixel: residual moire only
    diag = np.float32(np.pi * np.sqrt(2) / sheet.halftone_pitch)
    screen = np.cos(diag * (a + b)) * np.cos(diag * (a - b))
    coverage = np.clip(1 - ink / max(sheet.blank_reflectance, 1e-3), 0, 1)
    ink = ink * (1 + 0.12 * screen * 4 * coverage * (1 - coverage))
    diffuse_ink = ink * (1 - sheet.emission)
    base = ambient_level * (0.7 - 0.3 * ny) * diffuse_ink + sheet.emission * ink * 0.25

    def lit_by(light: Light) -> np.ndarray:
        lx, ly, lz, d2 = _toward_light(light, px, py, pz)
        n_dot_l = np.clip(nx * lx + ny * ly + nz * lz, 0, 1)
        hx, hy, hz = lx - px * inv_view, ly - py * inv_view, lz - pz * inv_view
        n_dot_h = np.clip((nx * hx + ny * hy + nz * hz) / np.sqrt(hx * hx + hy * hy + hz * hz),
                          0, 1)
        scale = np.float32(light.power * REFERENCE_DISTANCE_CM**2) / d2
        return scale * (n_dot_l * diffuse_ink + sheet.gloss * n_dot_h**sheet.shininess)

    for light in ambient:
        base = base + lit_by(light)
    frames = [base] + [base + lit_by(flashes[phase]) for phase in DEFAULT_PATTERN[1:]]
    return np.stack(frames).astype(np.float32), covered.astype(np.float32)


# ----------------------------------------------------------------------------------------
# scenario sampling


def _lights(lighting: Lighting, head_centre: np.ndarray, rng: np.random.Generator
            ) -> tuple[dict[Phase, Light], list[Light], float]:
    flashes = {phase: Light(np.array(pos), 1.0, phase is not Phase.FRONT)
               for phase, pos in FLASH_POSITIONS_CM.items()}
    ambient = []
    if lighting is Lighting.HALOGEN:
        lamp = head_centre + np.array([100.0, rng.uniform(-20, 5), rng.uniform(-15, 15)])
        target = rng.uniform(0.5, 1.2)  # irradiance at the face relative to one flash
        power = target * np.sum((lamp - head_centre) ** 2) / REFERENCE_DISTANCE_CM**2
        ambient.append(Light(lamp, power, True))
    return flashes, ambient, AMBIENT_DIFFUSE[lighting] * rng.uniform(0.7, 1.3)


def _random_motion(rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Small head (or hand) motion: degrees per second and cm per second."""
    return (np.deg2rad(rng.normal(0, 8.0, 3)) * scale, rng.normal(0, 2.5, 3) * scale)


def _head_body(surface: Surface, spec: ScenarioSpec, rng: np.random.Generator) -> _Body:
    yaw, pitch = POSE_ANGLES_DEG[spec.pose or Pose.AHEAD]
    rotation = rotation_matrix(yaw + rng.normal(0, 4), pitch + rng.normal(0, 4), rng.normal(0, 4))
    translation = np.array([rng.normal(0, 2.5), rng.normal(0, 2.5), rng.uniform(62, 80)])
    corners = []
    for eye in surface.eyes:  # right eye first: outer, inner
        for u, v in (eye.outer, eye.inner):
            corners.append((u, v, -_surface_height_at(surface, u, v)))
    us, vs = np.meshgrid(np.linspace(-6.5, 6.5, 9), np.linspace(-8.0, 9.5, 9))
    outline = [(u, v, -_surface_height_at(surface, u, v))
               for u, v in zip(us.ravel(), vs.ravel(), strict=True)]
    outline = np.array([p for p in outline if p[2] < 0])
    angular, linear = _random_motion(rng)
    return _Body(rotation, translation, angular, linear, np.array(corners), outline)


@lru_cache(maxsize=64)
def _print_sheet(spec: ScenarioSpec, root_seed: int) -> tuple[_Sheet, np.ndarray, np.ndarray]:
    """Print (or screen) content: a live or visible-light photo of the subject, as reflectance.

    Returns the sheet plus the printed eye corners and face-box corners in sheet coordinates.
    """
    rng = scenario_rng(spec, PRINT_CONTENT_STREAM, root_seed)
    pose = Pose.CAMERA if rng.random() < 0.6 else Pose.AHEAD
    source = ScenarioSpec(f'{spec.scenario_id}/source', Species.LIVE, Lighting.OFFICE, pose, 1,
                          subject_id=spec.subject_id)
    visible = spec.species is Species.REPLAY or spec.print_kind is not PrintKind.NIR
    cycle = render_cycle(source, 0, PRINT_SOURCE_MODE, root_seed, visible_photo=visible)
    phase = Phase.FRONT if visible else Phase(int(rng.choice([1, 1, 2, 3])))
    photo = cycle.frames[phase].astype(np.float32) / 255.0
    truth = cycle.truth[phase]
    if visible:  # a photographer exposes for the face
        face_level = max(float(np.median(_box(photo, truth.face_box))), 1e-3)
        photo = np.clip(photo * 0.6 / face_level, 0, 1)
    paper = rng.uniform(0.78, 0.9)
    gamma = rng.uniform(1.4, 2.2)
    coverage = 1 - photo**gamma  # ink coverage that reproduces the photo's visual lightness
    fibres = 1 + 0.02 * rng.standard_normal(photo.shape).astype(np.float32)
    if spec.species is Species.REPLAY:
        reflectance, blank, emission, gloss, shine, pitch_cm = photo, 0.02, 1.0, 0.6, 400.0, 0.008
    elif spec.print_kind is PrintKind.COLOUR:
        # dye inks are nearly transparent in the NIR; only black generation in dark tones absorbs
        black = np.clip((coverage - 0.55) / 0.45, 0, 1) * 0.85
        reflectance = paper * (1 - 0.9 * black) * (1 - 0.1 * coverage) * fibres
        blank, emission, gloss, shine, pitch_cm = paper, 0.0, 0.02, 6.0, 0.025
    else:  # toner (carbon black) absorbs NIR like visible light
        reflectance = paper * (1 - 0.93 * coverage) * fibres
        blank, emission, gloss, shine, pitch_cm = paper, 0.0, 0.03, 6.0, 0.03
    corners_px = truth.corners.as_array()
    iod_cm = np.linalg.norm(cycle.extras['corners_cm'][2] - cycle.extras['corners_cm'][0])
    texture_pitch = rng.uniform(0.85, 1.1) * iod_cm / np.linalg.norm(corners_px[2] - corners_px[0])
    if spec.species is Species.REPLAY:
        width, height = (21.0, 15.0) if rng.random() < 0.5 else (15.5, 21.0)
    else:
        width, height = (21.0, 29.7) if rng.random() < 0.5 else (42.0, 29.7)
    eye_mid = corners_px.mean(0)
    eye_on_sheet = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-4.0, -1.0)])
    texture_origin = eye_on_sheet - eye_mid * texture_pitch
    sheet = _Sheet(width, height, float(rng.uniform(-1 / 80, 1 / 80)) * (rng.random() < 0.4),
                   np.ascontiguousarray(reflectance, np.float32), tuple(texture_origin),
                   float(texture_pitch), blank, emission, gloss, shine, pitch_cm)
    x0, y0, x1, y1 = truth.face_box
    box = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    return sheet, texture_origin + corners_px * texture_pitch, texture_origin + box * texture_pitch


def _box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    h, w = image.shape
    return image[max(y0, 0):max(min(y1, h), 1), max(x0, 0):max(min(x1, w), 1)]


def _sheet_body(sheet: _Sheet, corners_ab: np.ndarray, box_ab: np.ndarray,
                rng: np.random.Generator) -> _Body:
    rotation = rotation_matrix(rng.uniform(-12, 12), rng.uniform(-30, 5), rng.uniform(-8, 8))
    eye_target = np.array([rng.normal(0, 2.5), rng.normal(-2, 2.5), rng.uniform(55, 72)])

    def lift(ab: np.ndarray) -> np.ndarray:
        return np.column_stack([ab, sheet.bend * ab[:, 0] ** 2])

    translation = eye_target - rotation @ lift(corners_ab).mean(0)
    angular, linear = _random_motion(rng, 0.7)
    return _Body(rotation, translation, angular, linear, lift(corners_ab), lift(box_ab))


# ----------------------------------------------------------------------------------------
# sensor


def _background(view: _Viewport, phase_lights: list[list[Light]], ambient_level: float,
                rng: np.random.Generator) -> np.ndarray:
    """Per-phase radiance of the far wall behind the subject (flash falloff makes it dim).

    The wall varies slowly, so it is shaded on a 1/8 grid and resized.
    """
    distance = rng.uniform(150, 230)
    albedo = rng.uniform(0.25, 0.5)
    size = (max(view.width // 8, 2), max(view.height // 8, 2))
    texture = cv2.resize(rng.uniform(0.7, 1.3, (4, 6)).astype(np.float32), size,
                         interpolation=cv2.INTER_CUBIC)
    points = cv2.resize(view.rays, size, interpolation=cv2.INTER_AREA) * distance
    frames = []
    for lights in phase_lights:
        radiance = np.full(texture.shape, ambient_level, np.float32)
        for light in lights:
            radiance += light.irradiance_scale(points).astype(np.float32) * 0.9
        frames.append(cv2.resize(albedo * texture * radiance, (view.width, view.height),
                                 interpolation=cv2.INTER_LINEAR))
    return np.stack(frames)


def _add_torso(background: np.ndarray, view: _Viewport, head_centre: np.ndarray, albedo: float,
               phase_lights: list[list[Light]], ambient_level: float) -> None:
    """Shoulders and chest below the head: an ellipsoid in world axes, composited in place."""
    world = rotation_matrix(0.0, -CAMERA_ELEVATION_DEG, 0.0)  # columns: right, down, away
    centre = head_centre + world @ np.array([0.0, 20.0, 5.0])
    axes = np.array([22.0, 11.0, 10.0], np.float32)
    rays = (view.rays[..., 0], view.rays[..., 1], view.rays[..., 2])
    local = _rotate(world.T, rays)
    d = [local[k] / axes[k] for k in range(3)]
    o = (world.T @ (-centre)) / axes
    qa = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    qb = float(o[0]) * d[0] + float(o[1]) * d[1] + float(o[2]) * d[2]
    disc = qb * qb - qa * float(o @ o - 1)
    hit = disc > 0
    t = (-qb - np.sqrt(np.maximum(disc, 0))) / qa
    if not hit.any():
        return
    unit = [float(o[k]) + t * d[k] for k in range(3)]
    nx, ny, nz = _rotate(world, tuple(unit[k] / axes[k] for k in range(3)))
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
    nx, ny, nz = nx * inv, ny * inv, nz * inv
    px, py, pz = rays[0] * t, rays[1] * t, rays[2] * t
    coverage = cv2.GaussianBlur(hit.astype(np.float32), (0, 0), 0.7)
    for frame, lights in zip(background, phase_lights, strict=True):
        radiance = ambient_level * (0.7 - 0.3 * ny)
        for light in lights:
            lx, ly, lz = (float(light.position[0]) - px, float(light.position[1]) - py,
                          float(light.position[2]) - pz)
            d2 = np.maximum(lx * lx + ly * ly + lz * lz, 1.0)
            n_dot_l = np.clip((nx * lx + ny * ly + nz * lz) / np.sqrt(d2), 0, 1)
            radiance = radiance + n_dot_l * np.float32(light.power * REFERENCE_DISTANCE_CM**2) / d2
        frame += coverage * (albedo * radiance - frame)


def _expose(radiance: np.ndarray, view: _Viewport, gain: float, rng: np.random.Generator
            ) -> np.ndarray:
    """Lens blur, vignetting, exposure, shot and read noise, 8-bit quantisation."""
    image = cv2.GaussianBlur(radiance, (0, 0), max(0.35, 0.6 * view.scale))
    dn = 3.0 + gain * 255.0 * image * view.vignetting
    noise = rng.standard_normal(dn.shape).astype(np.float32)
    dn = dn + noise * np.sqrt(1.3**2 + 0.3 * np.maximum(dn, 0))
    return np.clip(np.rint(dn), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# public entry point


def render_cycle(spec: ScenarioSpec, cycle_index: int, mode: RenderMode = CROP_MODE,
                 root_seed: int = 0, visible_photo: bool = False,
                 take_period_s: float | None = None) -> RenderedCycle:
    """Render one dark/front/right/left cycle of a scenario with its per-frame ground truth.

    ``visible_photo`` renders a live subject as a visible-light photograph would show them
    (used as print content): visible albedos, no bright pupil.

    By default every cycle is an independent sample (its own pose, light and framing): what
    the training protocol wants. With ``take_period_s`` the cycles of the scenario are one
    continuous take, as a camera records it: the scene is drawn once and the head (or the
    held print) sways smoothly, back at its start after each period, so a clip of that
    length loops without a jump; only the sensor noise differs from cycle to cycle.
    """
    rng = scenario_rng(spec, 0 if take_period_s else cycle_index, root_seed)
    noise_rng = scenario_rng(spec, cycle_index, root_seed) if take_period_s else rng
    identity = make_identity(spec.subject_id, root_seed)
    eye_state = None
    if spec.species in (Species.LIVE, Species.MASK):
        if spec.species is Species.MASK:
            surface = build_mask_surface(make_mask(spec.mask_id, root_seed), identity)
        else:
            surface = build_live_surface(identity, visible=visible_photo)
        body = _head_body(surface, spec, rng)
        low, high = PUPIL_RADIUS_CM[spec.lighting]
        pupil = rng.uniform(low, high) * identity.pupil_scale
        eye_state = _EyeState(rng.normal(0, 0.12, 2), pupil)
    else:
        sheet, corners_ab, box_ab = _print_sheet(spec, root_seed)
        body = _sheet_body(sheet, corners_ab, box_ab, rng)
    if take_period_s:
        body = body.swayed(cycle_index * len(DEFAULT_PATTERN) * FRAME_INTERVAL_S, take_period_s)
    flashes, ambient, ambient_level = _lights(spec.lighting, body.translation, rng)
    if visible_photo:  # soft studio light
        ambient_level = 0.5
    gain = float(rng.lognormal(np.log(0.85), 0.12)) / (1 + 0.5 * sum(a.power > 0 for a in ambient))
    base_corners = project(body.corners @ body.rotation.T + body.translation)
    base_outline = project(body.outline @ body.rotation.T + body.translation)
    if mode.full_frame:
        origin = (0.0, 0.0)
    else:
        eye_mid = base_corners.mean(0)
        jitter = rng.uniform(-0.05, 0.05, 2) * np.array([mode.width, mode.height]) / mode.scale
        origin = tuple(eye_mid - np.array([0.5 * mode.width, 0.4 * mode.height]) / mode.scale
                       + jitter)
    frame_view = _Viewport(origin, mode.width, mode.height, mode.scale)
    render_view = _object_view(frame_view, body, spec.species) if mode.full_frame else frame_view
    phase_lights = [list(ambient) + ([flashes[p]] if p is not Phase.DARK else [])
                    for p in DEFAULT_PATTERN]
    if eye_state is not None:
        radiance, cover = _head_radiance(surface, body, render_view, flashes, ambient,
                                         ambient_level, eye_state)
    else:
        radiance, cover = _sheet_radiance(sheet, body, render_view, flashes, ambient,
                                          ambient_level)
    background = _background(frame_view, phase_lights, ambient_level, rng)
    if eye_state is not None:
        _add_torso(background, frame_view, body.translation, identity.shirt_nir, phase_lights,
                   ambient_level)
    ox = int(round((render_view.origin[0] - frame_view.origin[0]) * mode.scale))
    oy = int(round((render_view.origin[1] - frame_view.origin[1]) * mode.scale))
    frames, truth = [], []
    for index, phase in enumerate(DEFAULT_PATTERN):
        t = (index - 1.5) * FRAME_INTERVAL_S
        rotation, translation = body.pose_at(t)
        moved = project(body.corners @ rotation.T + translation)
        warp = _similarity(base_corners, moved)
        local = warp.copy()
        local[:, 2] += (local[:, :2] @ np.array(render_view.origin) - np.array(render_view.origin))
        local[:, 2] *= mode.scale
        size = (render_view.width, render_view.height)
        fg = cv2.warpAffine(radiance[index], local, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(cover, local, size, flags=cv2.INTER_LINEAR)
        composite = background[index].copy()
        region = composite[oy:oy + render_view.height, ox:ox + render_view.width]
        region += alpha * (fg - region)
        frames.append(_expose(composite, frame_view, gain, noise_rng))
        corners = frame_view.to_pixels(_apply(warp, base_corners))
        outline = frame_view.to_pixels(_apply(warp, base_outline))
        truth.append(FrameTruth(phase, t, EyeCornerPoints.from_array(corners),
                                (float(outline[:, 0].min()), float(outline[:, 1].min()),
                                 float(outline[:, 0].max()), float(outline[:, 1].max()))))
    return RenderedCycle(spec, cycle_index, mode, np.stack(frames), truth, origin,
                         None if eye_state is None else float(eye_state.pupil_radius),
                         {'corners_cm': body.corners, 'gain': gain})


def _object_view(frame_view: _Viewport, body: _Body, species: Species) -> _Viewport:
    """Sub-viewport that contains the object (saves tracing empty pixels on full frames)."""
    extent = 13.0 if species in (Species.LIVE, Species.MASK) else 26.0
    corners = np.array([[x, y, z] for x in (-extent, extent) for y in (-extent, extent + 6)
                        for z in (-extent, extent)])
    pixels = frame_view.to_pixels(project(corners @ body.rotation.T + body.translation))
    x0, y0 = np.clip(np.floor(pixels.min(0)) - 8, 0, [frame_view.width, frame_view.height])
    x1, y1 = np.clip(np.ceil(pixels.max(0)) + 8, 0, [frame_view.width, frame_view.height])
    x0, y0, x1, y1 = int(x0), int(y0), max(int(x1), int(x0) + 1), max(int(y1), int(y0) + 1)
    origin = (frame_view.origin[0] + x0 / frame_view.scale,
              frame_view.origin[1] + y0 / frame_view.scale)
    return _Viewport(origin, x1 - x0, y1 - y0, frame_view.scale)
