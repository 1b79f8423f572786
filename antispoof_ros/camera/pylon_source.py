"""Basler cameras through pypylon: open, configure, grab, and survive disconnects.

Works the same with a real camera and with pylon's own emulated camera
(``PYLON_CAMEMU``), which can be fed a folder of images; the emulator has no counters or
tick clock, and the code falls back instead of failing (it has no sequencer either, so the
sequencer wiring is refused on it).
The flash wiring (``wiring``) is applied as a plan of feature writes at every open, so a
reconnected camera is programmed again; a camera that cannot run the wiring is refused.
``CameraStream`` can pause grabbing with the camera kept open and its flash outputs off,
and start again, as often as a lifecycle manager asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import os
from pathlib import Path
import threading
import time

import numpy as np
from pypylon import genicam, pylon

from antispoof_ros.camera import wiring
from antispoof_ros.flash import DEFAULT_PATTERN, Phase

# pylon pixel format -> ROS image encoding of the published frames
PIXEL_FORMATS = {'Mono8': 'mono8', 'Mono10': 'mono16', 'Mono12': 'mono16'}
EMULATOR_MODEL = 'Emulation'


class CameraError(RuntimeError):
    """Something about the camera the node can report in one line."""


class CameraNotFoundError(CameraError):
    """No matching camera is connected (may heal: plug it in)."""


class CameraConfigError(CameraError):
    """The camera refuses the configuration (will not heal by retrying)."""


class CameraRemovedError(CameraError):
    """The camera disappeared while grabbing."""


@dataclass(frozen=True)
class CameraSettings:
    """What the node asks of the camera; empty strings and zeros mean 'leave as is'."""

    serial_number: str = ''
    user_id: str = ''
    width: int = 1920
    height: int = 1200
    offset_x: int = 0
    offset_y: int = 0
    pixel_format: str = 'Mono8'
    exposure_us: float = 2000.0
    gain_db: float = 0.0
    frame_rate_hz: float = 120.0
    user_set: str = ''
    feature_file: str = ''
    line_outputs: tuple[str, ...] = ()
    # pylon transport layers searched for cameras. GigE is left out by default: its device
    # discovery broadcasts UDP on every network interface.
    transport_layers: tuple[str, ...] = ('BaslerUsb', 'BaslerCamEmu')
    emulated_cameras: int = 0
    emulator_image_dir: str = ''
    buffer_count: int = 16
    # how the flashes follow the frames: wiring.WIRING_MODES ('none': leave the camera's
    # sequencer and lines as they are)
    flash_wiring: str = 'none'
    # 'phase:Line' entries (``+`` joins lines), e.g. ('front:Line2', 'right:Line3', 'left:Line4')
    flash_lines: tuple[str, ...] = ()
    flash_pattern: tuple[Phase, ...] = DEFAULT_PATTERN
    # whole cycles whose chunk set indices must follow the sequencer plan before labels
    # count as verified: at start (else the camera is refused) and after a deviation
    sequencer_confirm_cycles: int = 2


@dataclass(frozen=True)
class CameraInfo:
    """Identity and effective settings of an opened camera."""

    model: str
    serial_number: str
    user_id: str
    resulting_frame_rate_hz: float
    is_emulator: bool
    has_sequencer: bool
    notes: tuple[str, ...] = ()
    wiring_plan: tuple[wiring.Step, ...] = ()


@dataclass
class GrabbedFrame:
    """One successfully grabbed frame with what the camera told about it."""

    pixels: np.ndarray
    block_id: int
    camera_tick: int
    host_arrival_ns: int
    sequencer_set: int | None = None
    # the set index of this frame and the frames before it followed the sequencer plan
    sequencer_verified: bool = False


@dataclass
class GrabStatistics:
    """Counters for diagnostics."""

    grabbed: int = 0
    failed: int = 0
    timeouts: int = 0
    reconnects: int = 0
    last_error: str = ''
    errors_by_reason: dict[str, int] = field(default_factory=dict)

    def count_error(self, reason: str) -> None:
        """Count one failed grab and remember why."""
        self.failed += 1
        self.last_error = reason
        self.errors_by_reason[reason] = self.errors_by_reason.get(reason, 0) + 1


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class PylonCamera:
    """One Basler camera: open by serial number or user id, configure, grab."""

    def __init__(self, settings: CameraSettings) -> None:
        if settings.pixel_format not in PIXEL_FORMATS:
            raise CameraConfigError(
                f"unknown pixel format '{settings.pixel_format}' "
                f"(supported: {', '.join(PIXEL_FORMATS)})"
            )
        if settings.flash_wiring not in wiring.WIRING_MODES:
            raise CameraConfigError(
                f"unknown flash wiring '{settings.flash_wiring}' "
                f"(known: {', '.join(wiring.WIRING_MODES)})"
            )
        self.settings = settings
        self.sequencer_check = wiring.SequencerCheck(len(settings.flash_pattern),
                                                     settings.sequencer_confirm_cycles)
        self.encoding = PIXEL_FORMATS[settings.pixel_format]
        self.camera: pylon.InstantCamera | None = None
        self.info: CameraInfo | None = None
        # block id of the last failed grab (a lost frame), None after a good grab or timeout
        self.failed_block_id: int | None = None
        # outputs_off() ran since the wiring plan was last applied
        self._outputs_are_off = False

    # -- opening -------------------------------------------------------------------------
    def open(self) -> CameraInfo:
        """Find, open and configure the camera; raise CameraNotFound/CameraConfigError."""
        if self.settings.emulated_cameras > 0:
            # read by pylon when it first enumerates devices
            os.environ.setdefault('PYLON_CAMEMU', str(self.settings.emulated_cameras))
        device_info = self._find_device()
        try:
            device = pylon.TlFactory.GetInstance().CreateDevice(device_info)
            self.camera = pylon.InstantCamera(device)
            self.camera.Open()
        except genicam.GenericException as error:
            self.close()
            raise CameraNotFoundError(f'cannot open camera: {_first_line(error)}') from None
        try:
            self.info = self._configure(device_info)
            self._outputs_are_off = False
        except CameraConfigError:
            self.close()
            raise
        return self.info

    def _find_device(self) -> pylon.DeviceInfo:
        factory, devices = pylon.TlFactory.GetInstance(), []
        for device_class in self.settings.transport_layers:
            transport_layer = factory.CreateTl(device_class)
            if transport_layer is not None:  # None: this pylon build has no such layer
                devices.extend(transport_layer.EnumerateDevices())
        wanted_serial, wanted_user = self.settings.serial_number, self.settings.user_id
        for device in devices:
            if wanted_serial and device.GetSerialNumber() != wanted_serial:
                continue
            if wanted_user and device.GetUserDefinedName() != wanted_user:
                continue
            return device
        found = ', '.join(
            f'{d.GetModelName()} serial {d.GetSerialNumber()}' for d in devices
        ) or 'none'
        wanted = ' '.join(
            part for part in (wanted_serial and f'serial {wanted_serial}',
                              wanted_user and f"user id '{wanted_user}'") if part
        ) or 'any'
        raise CameraNotFoundError(f'no camera matching {wanted} (found: {found})')

    def _configure(self, device_info: pylon.DeviceInfo) -> CameraInfo:
        camera, s, notes = self.camera, self.settings, []
        is_emulator = device_info.GetModelName() == EMULATOR_MODEL
        if s.user_set:
            self._set('UserSetSelector', s.user_set)
            self._execute('UserSetLoad')
        if s.feature_file:
            path = Path(s.feature_file)
            if not path.is_file():
                raise CameraConfigError(f'feature file not found: {path}')
            try:
                pylon.FeaturePersistence.Load(str(path), camera.GetNodeMap(), True)
            except genicam.GenericException as error:
                raise CameraConfigError(f'feature file {path}: {_first_line(error)}') from None
        self._set('PixelFormat', s.pixel_format)
        for name, value in (('Width', s.width), ('Height', s.height),
                            ('OffsetX', s.offset_x), ('OffsetY', s.offset_y)):
            self._set(name, value)
        self._set_first(('ExposureTime', 'ExposureTimeAbs'), s.exposure_us)
        self._set_first(('Gain', 'GainAbs'), s.gain_db, optional=True, notes=notes)
        self._set('AcquisitionFrameRateEnable', True)
        self._set_first(('AcquisitionFrameRate', 'AcquisitionFrameRateAbs'), s.frame_rate_hz)
        plan = self._wiring_plan(device_info.GetModelName())
        self.apply(plan)
        if s.emulator_image_dir:
            if not is_emulator:
                raise CameraConfigError('emulator_image_dir is set but the camera is not emulated')
            folder = Path(s.emulator_image_dir)
            if not folder.is_dir() or not any(folder.iterdir()):
                raise CameraConfigError(f'emulator image folder is missing or empty: {folder}')
            self._set('TestImageSelector', 'Off')
            self._set('ImageFileMode', 'On')
            self._set('ImageFilename', str(folder.resolve()))
        camera.MaxNumBuffer.Value = s.buffer_count
        return CameraInfo(
            model=device_info.GetModelName(),
            serial_number=device_info.GetSerialNumber(),
            user_id=device_info.GetUserDefinedName(),
            resulting_frame_rate_hz=self._read_first(
                ('ResultingFrameRate', 'ResultingFrameRateAbs'), s.frame_rate_hz
            ),
            is_emulator=is_emulator,
            has_sequencer=s.flash_wiring == 'sequencer',
            notes=tuple(notes),
            wiring_plan=tuple(plan),
        )

    def _wiring_plan(self, model: str) -> list[wiring.Step]:
        """The flash wiring for this camera, checked against what the camera offers."""
        s = self.settings
        try:
            if s.flash_wiring == 'external':
                return wiring.external_controller_plan(s.line_outputs)
            plan = wiring.line_output_plan(s.line_outputs)
            if s.flash_wiring == 'sequencer':
                if not self._available('SequencerMode'):
                    raise CameraConfigError(
                        f"flash_wiring 'sequencer' needs a camera sequencer; {model} has no "
                        "SequencerMode feature (use flash_wiring 'external')"
                    )
                family = wiring.camera_family(model)
                flash_lines = wiring.parse_flash_lines(s.flash_lines)
                self.apply(wiring.SEQUENCER_CONFIGURATION)  # the set count is readable now
                plan += wiring.sequencer_plan(s.flash_pattern, flash_lines, family,
                                              self._sequencer_sets(family))
            return plan
        except wiring.WiringError as error:
            raise CameraConfigError(str(error)) from None

    def _sequencer_sets(self, family: wiring.CameraFamily) -> int:
        try:
            return int(self.camera.GetNodeMap().GetNode('SequencerSetSelector').GetMax()) + 1
        except (genicam.GenericException, AttributeError):
            return family.sequencer_sets

    def apply(self, plan: list[wiring.Step] | tuple[wiring.Step, ...]) -> None:
        """Write a wiring plan in order; a value the camera already has is left alone.

        Leaving equal values alone also passes features that are fixed on a model, such as
        the LineMode of an output-only line.
        """
        node_map = self.camera.GetNodeMap()
        for step in plan:
            if isinstance(step, wiring.Execute):
                self._execute(step.name)
                continue
            if not self._available(step.name):
                raise CameraConfigError(f"camera has no feature '{step.name}'")
            node = node_map.GetNode(step.name)
            try:
                if genicam.IsReadable(node) and node.GetValue() == step.value:
                    continue
            except genicam.GenericException:
                pass  # unreadable now: write it
            self._set(step.name, step.value)

    def _available(self, name: str) -> bool:
        try:
            return genicam.IsAvailable(self.camera.GetNodeMap().GetNode(name))
        except genicam.GenericException:
            return False

    def _set(self, name: str, value: object) -> None:
        if not self._available(name):
            raise CameraConfigError(f"camera has no feature '{name}'")
        try:
            self.camera.GetNodeMap().GetNode(name).SetValue(value)
        except genicam.GenericException as error:
            raise CameraConfigError(f'{name} = {value}: {_first_line(error)}') from None

    def _set_first(self, names: tuple[str, ...], value: object, optional: bool = False,
                   notes: list[str] | None = None) -> None:
        for name in names:
            if self._available(name):
                self._set(name, value)
                return
        if not optional:
            raise CameraConfigError(f"camera has none of the features {', '.join(names)}")
        if notes is not None:
            notes.append(f"camera has no {'/'.join(names)}: left unchanged")

    def _read_first(self, names: tuple[str, ...], default: float) -> float:
        for name in names:
            if self._available(name):
                return float(self.camera.GetNodeMap().GetNode(name).GetValue())
        return default

    def _execute(self, name: str) -> None:
        if not self._available(name):
            raise CameraConfigError(f"camera has no feature '{name}'")
        self.camera.GetNodeMap().GetNode(name).Execute()

    # -- grabbing ------------------------------------------------------------------------
    def start(self) -> None:
        """Start continuous acquisition; frames are queued one by one, oldest first.

        Flash outputs switched off by ``outputs_off`` are wired again first. With the
        sequencer wiring the first cycles are grabbed here and must follow the plan, else
        the camera is closed and CameraConfigError says what the chunk showed.
        """
        if self._outputs_are_off:
            self.apply(self.info.wiring_plan)
            self._outputs_are_off = False
        self.sequencer_check.reset()
        try:
            self.camera.StartGrabbing(pylon.GrabStrategy_OneByOne)
        except genicam.GenericException as error:
            self.close()
            raise CameraNotFoundError(f'cannot start grabbing: {_first_line(error)}') from None
        if self.settings.flash_wiring == 'sequencer':
            self._confirm_sequencer()

    def _confirm_sequencer(self) -> None:
        check, statistics = self.sequencer_check, GrabStatistics()
        seen: list[int | None] = []
        budget = check.needed + 2 * check.sets  # a late first frame may be out of step
        while len(seen) < budget and not check.verified:
            try:
                frame = self.grab(1000, statistics)
            except CameraError:
                self.close()
                raise
            if frame is None:
                if statistics.timeouts + statistics.failed > budget:
                    break
                continue
            seen.append(frame.sequencer_set)
        if not check.verified:
            self.close()
            raise CameraConfigError(
                f'the sequencer does not run as planned: chunk set indices {seen[:12]} '
                f'(expected 0..{check.sets - 1}, one step per frame)'
            )

    def grab(self, timeout_ms: int, statistics: GrabStatistics) -> GrabbedFrame | None:
        """Next frame, or None after a timeout or failed grab (counted in ``statistics``).

        A failed grab still returns its block id through ``failed_block_id`` so lost frames
        are not mistaken for skipped ones. Raises CameraRemovedError when the camera is gone.
        """
        camera = self.camera
        try:
            result = camera.RetrieveResult(timeout_ms, pylon.TimeoutHandling_Return)
        except genicam.GenericException as error:
            if camera.IsCameraDeviceRemoved():
                raise CameraRemovedError('camera removed while grabbing') from None
            statistics.count_error(_first_line(error))
            return None
        self.failed_block_id = None
        if camera.IsCameraDeviceRemoved():
            if result is not None and result.IsValid():
                result.Release()
            raise CameraRemovedError('camera removed while grabbing')
        if result is None or not result.IsValid():
            if camera.IsCameraDeviceRemoved():
                raise CameraRemovedError('camera removed while grabbing')
            statistics.timeouts += 1
            return None
        try:
            if not result.GrabSucceeded():
                statistics.count_error(result.GetErrorDescription().strip() or 'grab failed')
                self.failed_block_id = int(result.BlockID)
                return None
            block_id, sequencer_set = int(result.BlockID), self._sequencer_set(result)
            frame = GrabbedFrame(
                pixels=result.GetArray(),
                block_id=block_id,
                camera_tick=int(result.TimeStamp),
                host_arrival_ns=time.time_ns(),
                sequencer_set=sequencer_set,
                sequencer_verified=(sequencer_set is not None
                                    and self.sequencer_check.add(block_id, sequencer_set)),
            )
        finally:
            result.Release()
        statistics.grabbed += 1
        return frame

    def _sequencer_set(self, result: pylon.GrabResult) -> int | None:
        if not (self.info and self.info.has_sequencer):
            return None
        try:
            return int(result.ChunkSequencerSetActive.Value)
        except genicam.GenericException:
            return None

    def stop_grabbing(self) -> None:
        """Stop acquisition, the camera kept open and programmed (no-op when closed)."""
        try:
            if self.camera is not None and self.camera.IsGrabbing():
                self.camera.StopGrabbing()
        except genicam.GenericException:
            pass  # the device is gone: the next open finds out

    def outputs_off(self) -> None:
        """Switch off every flash output the applied wiring drives (no-op when closed).

        A line whose LineSource offers no Off is held low by its family's idle user output;
        the next ``start`` wires the outputs again. Raises CameraConfigError if a line can
        be neither.
        """
        if self.camera is None or self.info is None:
            return
        self.apply(wiring.outputs_off_plan(self.info.wiring_plan, self._hold_low_lines()))
        self._outputs_are_off = True

    def _hold_low_lines(self) -> dict[str, str]:
        """Driven lines without a LineSource Off -> the user output that holds them low."""
        try:
            family = wiring.camera_family(self.info.model)
        except wiring.WiringError:
            return {}  # no known idle outputs: LineSource Off, or a clear error
        hold_low = {}
        for line in wiring.driven_lines(self.info.wiring_plan):
            if line in family.line_names and not self._offers_off(line):
                hold_low[line] = family.idle_source(line)
        return hold_low

    def _offers_off(self, line: str) -> bool:
        try:
            self._set('LineSelector', line)
            entry = self.camera.GetNodeMap().GetNode('LineSource').GetEntryByName('Off')
            return entry is not None and genicam.IsAvailable(entry)
        except (genicam.GenericException, CameraConfigError):
            return False

    def close(self) -> None:
        """Stop grabbing and release the device; safe to call more than once."""
        camera, self.camera = self.camera, None
        if camera is None:
            return
        try:
            if camera.IsGrabbing():
                camera.StopGrabbing()
            if camera.IsOpen():
                camera.Close()
        except genicam.GenericException:
            pass  # the device may be gone already; destroying it below is what matters
        finally:
            camera.DestroyDevice()


FrameCallback = Callable[[GrabbedFrame], None]
EventCallback = Callable[[str, str], None]  # (level, text)


class CameraStream:
    """Keeps a camera grabbing on a background thread, reconnecting with back-off.

    ``on_frame`` runs on the grab thread for every good frame; ``on_event`` reports state
    changes (level 'info' / 'warn' / 'error') and ``on_stream_start`` each (re)start.
    ``start`` and ``pause`` may alternate any number of times; ``close`` releases the camera.
    """

    def __init__(self, settings: CameraSettings, on_frame: FrameCallback,
                 on_event: EventCallback, on_stream_start: Callable[[CameraInfo], None],
                 on_lost_frame: Callable[[int], None], grab_timeout_ms: int = 1000,
                 retry_delay_s: float = 0.5, retry_max_delay_s: float = 10.0) -> None:
        self.settings = settings
        self.camera = PylonCamera(settings)
        self.statistics = GrabStatistics()
        self._on_frame, self._on_event = on_frame, on_event
        self._on_stream_start, self._on_lost_frame = on_stream_start, on_lost_frame
        self._grab_timeout_ms = grab_timeout_ms
        self._retry_delay_s, self._retry_max_delay_s = retry_delay_s, retry_max_delay_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False  # grabbing
        self._lost_camera = False  # the next successful start is a reconnect

    def open_now(self, grab: bool = True) -> CameraInfo | None:
        """Open (and program) the camera in the caller's thread, and start grabbing if ``grab``.

        None if no camera is there yet: the grab thread keeps looking once started.
        CameraConfigError (a camera that refuses the settings) reaches the caller.
        """
        try:
            info = self.camera.open()
        except CameraNotFoundError as error:
            self._on_event('warn', f'{error}; retrying')
            return None
        if grab:
            self._begin(info)
        return info

    def start(self) -> None:
        """Start grabbing, then the grab thread that keeps it going.

        An open camera starts grabbing in the caller's thread, so a CameraConfigError
        (a sequencer that does not run as planned) reaches the caller; a closed one is
        opened by the grab thread, which retries until it appears.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        if self.camera.info is not None and self.camera.camera is not None:
            try:
                self._begin(self.camera.info)
            except CameraNotFoundError as error:
                self._on_event('warn', f'{error}; retrying')
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='camera_grab', daemon=True)
        self._thread.start()

    def _begin(self, info: CameraInfo) -> None:
        self.camera.start()
        if self._lost_camera:
            self.statistics.reconnects += 1
            self._on_event('info', f'camera {info.serial_number} reconnected')
        self.connected, self._lost_camera = True, False
        self._on_stream_start(info)

    def _run(self) -> None:
        delay = self._retry_delay_s
        while not self._stop.is_set():
            if not self.connected:
                try:
                    self._begin(self.camera.open())
                except CameraError as error:
                    self._on_event('warn', f'{error}; retrying in {delay:.1f} s')
                    self._stop.wait(delay)
                    delay = min(delay * 2, self._retry_max_delay_s)
                    continue
                delay = self._retry_delay_s
            try:
                frame = self.camera.grab(self._grab_timeout_ms, self.statistics)
            except CameraRemovedError as error:
                self.statistics.count_error(str(error))
                self._on_event('error', f'{error}; reconnecting')
                self.camera.close()
                self.connected, self._lost_camera = False, True
                continue
            if frame is not None:
                self._on_frame(frame)
            elif self.camera.failed_block_id is not None:
                self._on_lost_frame(self.camera.failed_block_id)

    def pause(self) -> None:
        """Stop the grab thread and grabbing; an open camera stays open and programmed."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._thread = None
        self.camera.stop_grabbing()
        self.connected = False

    def close(self) -> None:
        """Stop grabbing and release the camera (always; also if never connected)."""
        self.pause()
        self.camera.close()
