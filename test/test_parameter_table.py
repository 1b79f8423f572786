"""The README's parameter tables are generated from the nodes' declarations and kept in step."""

from pathlib import Path

import pytest

from antispoof_ros.tools.parameter_table import (
    END_MARKER,
    NODE_PARAMETERS,
    markdown_table,
    parameter_section,
    replace_section,
)

README = Path(__file__).resolve().parent.parent / 'README.md'


def test_readme_tables_match_the_declared_parameters():
    assert parameter_section() in README.read_text(encoding='utf-8'), (
        'README parameter tables are stale: run '
        'python -m antispoof_ros.tools.parameter_table --write README.md')


def test_every_declared_parameter_has_a_row():
    for params in NODE_PARAMETERS.values():
        table = markdown_table(params)
        assert len(table.splitlines()) == len(params) + 2
        for param in params:
            assert f'| `{param.name}` |' in table


def test_replace_section_keeps_the_text_around_it():
    document = f'before\n{parameter_section()}\nafter'
    rewritten = replace_section(document.replace('| `pair` |', '| `old` |'), parameter_section())
    assert rewritten == document


def test_missing_markers_are_reported():
    with pytest.raises(ValueError, match='markers'):
        replace_section(f'no start marker {END_MARKER}', parameter_section())
