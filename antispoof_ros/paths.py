"""Folders the package finds relative to its own code."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_MODELS = PACKAGE_DIR / 'models'
# The repository root when running from a source checkout (config/, msg/, docs/, test/).
SOURCE_TREE = PACKAGE_DIR.parent
