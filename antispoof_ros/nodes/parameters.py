"""Declared parameters with descriptors, and strict checking of parameter files.

rclpy silently ignores overrides for names a node never declares, so a typo in a YAML
file would go unnoticed; ``declare_parameters`` turns it into a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterException
from rclpy.node import Node

# Declared by rclpy itself on every node.
_BUILTIN_PARAMETERS = {'use_sim_time', 'start_type_description_service'}


class ConfigError(ValueError):
    """A node's configuration is unusable; the message is a complete one-line reason."""


@dataclass(frozen=True)
class Param:
    """One node parameter: name, default, and what a user needs to know to set it."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    # Needed only where the default (an empty list) does not reveal the type.
    type_: int | None = None

    def descriptor(self) -> ParameterDescriptor:
        """ROS descriptor: type, description, ranges and allowed values for tools."""
        descriptor = ParameterDescriptor(
            name=self.name,
            type=self.type_ if self.type_ is not None else _parameter_type(self.default),
            description=self.description,
            read_only=self.read_only,
        )
        if self.choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(self.choices)
        if self.min_value is not None or self.max_value is not None:
            if descriptor.type == ParameterType.PARAMETER_INTEGER:
                low = -(2**63) if self.min_value is None else int(self.min_value)
                high = 2**63 - 1 if self.max_value is None else int(self.max_value)
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high)]
            else:
                low = -1e300 if self.min_value is None else float(self.min_value)
                high = 1e300 if self.max_value is None else float(self.max_value)
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=low, to_value=high)
                ]
        return descriptor


def _parameter_type(default: Any) -> int:
    if isinstance(default, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(default, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(default, float):
        return ParameterType.PARAMETER_DOUBLE
    if isinstance(default, str):
        return ParameterType.PARAMETER_STRING
    if isinstance(default, (list, tuple)) and default:
        first = default[0]
        if isinstance(first, str):
            return ParameterType.PARAMETER_STRING_ARRAY
        if isinstance(first, bool):
            return ParameterType.PARAMETER_BOOL_ARRAY
        if isinstance(first, int):
            return ParameterType.PARAMETER_INTEGER_ARRAY
        return ParameterType.PARAMETER_DOUBLE_ARRAY
    raise TypeError(f'cannot infer a parameter type from {default!r}; set type_')


def declare_parameters(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare ``params`` on ``node``, validate them, and return their values by name.

    Raises ConfigError for a wrong type, a value out of range or not among the choices,
    and for any override in the parameter file that names no declared parameter.
    """
    values: dict[str, Any] = {}
    for param in params:
        try:
            value = node.declare_parameter(param.name, param.default, param.descriptor()).value
        except ParameterException as error:
            raise ConfigError(f"parameter '{param.name}': {_first_line(error)}") from None
        if param.choices and value not in param.choices:
            raise ConfigError(
                f"parameter '{param.name}': '{value}' is not one of {', '.join(param.choices)}"
            )
        values[param.name] = list(value) if isinstance(value, (list, tuple)) else value
    declared = {p.name for p in params} | _BUILTIN_PARAMETERS
    # rclpy keeps the parameter-file values for this node here; there is no public getter.
    unknown = sorted(set(node._parameter_overrides) - declared)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) for node '{node.get_name()}': {', '.join(unknown)} "
            f"(declared: {', '.join(sorted(p.name for p in params))})"
        )
    return values


def log_parameters(node: Node, values: dict[str, Any]) -> None:
    """Log the effective configuration once at start-up, one parameter per line."""
    lines = '\n'.join(f'  {name}: {value!r}' for name, value in values.items())
    node.get_logger().info(f'parameters:\n{lines}')


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
