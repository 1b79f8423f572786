"""Report, score files and CLI of antispoof_ros.offline.evaluation, on hand-countable files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
import subprocess
import sys

from matplotlib.image import imread
import numpy as np
import pytest

from antispoof_ros.offline.evaluation.__main__ import main
from antispoof_ros.offline.evaluation.metrics import ThresholdChoice, evaluate_at_threshold
from antispoof_ros.offline.evaluation.report import (
    ModelIdentity,
    ReportRequest,
    ScoreFileError,
    accuracy_table,
    file_sha256,
    load_score_table,
    write_report,
)

COLUMNS = ('score', 'label', 'species', 'split', 'subject')
# Validation: the lowest threshold with max APCER <= 1 % (the default BPCER100 operating point)
# lies midway between 0.5 (the highest attack score) and 0.75 (the lowest bona fide score):
# 0.625, exact in binary.
VAL_ROWS = [
    (0.875, 1, 'live', 'validation', 'a'), (0.75, 1, 'live', 'validation', 'b'),
    (0.125, 0, 'print', 'validation', 'a'), (0.25, 0, 'print', 'validation', 'b'),
    (0.1875, 0, 'mask', 'validation', 'a'), (0.5, 0, 'mask', 'validation', 'b'),
]
# Test at 0.625: live 0.6 rejected (BPCER 1/4; 0.625 is a tie, accepted), print 0.7
# accepted (APCER 1/2), no mask accepted (APCER 0); 6 of 8 correct.
TEST_ROWS = [
    (0.9, 1, 'live', 'test', 'c'), (0.625, 1, 'live', 'test', 'c'),
    (0.6, 1, 'live', 'test', 'd'), (0.8, 1, 'live', 'test', 'd'),
    (0.7, 0, 'print', 'test', 'c'), (0.1, 0, 'print', 'test', 'd'),
    (0.3, 0, 'mask', 'test', 'c'), (0.62, 0, 'mask', 'test', 'd'),
]


def write_csv(path: Path, rows, columns=COLUMNS) -> Path:
    with path.open('w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def write_npz(path: Path, rows) -> Path:
    columns = list(zip(*rows, strict=True))
    np.savez(path, score=np.array(columns[0]), label=np.array(columns[1]),
             species=np.array(columns[2]), split=np.array(columns[3]),
             subject=np.array(columns[4]))
    return path


@pytest.fixture
def scores_csv(tmp_path) -> Path:
    return write_csv(tmp_path / 'p2.csv', VAL_ROWS + TEST_ROWS)


def test_cli_report_has_the_hand_counted_figures(tmp_path, scores_csv, capsys):
    model = tmp_path / 'p2.onnx'
    model.write_bytes(b'not really a model')
    out = tmp_path / 'report'
    assert main(['--scores', str(scores_csv), '--out', str(out), '--model', str(model),
                 '--input-type', 'P2', '--data-id', 'toy-v1', '--threshold', 'bpcer100']) == 0
    assert capsys.readouterr().out.strip() == str(out / 'report.md')
    assert sorted(os.listdir(out)) == ['det.png', 'metrics.json', 'report.md', 'scores.png']

    document = json.loads((out / 'metrics.json').read_text())
    assert document['model'] == {'name': 'p2', 'sha256': file_sha256(model)}
    assert document['threshold']['value'] == 0.625
    assert document['threshold']['target'] == 'bpcer100'
    assert document['threshold']['validation'] == {'apcer_max': 0, 'bpcer': 0}
    metrics = document['metrics']
    assert metrics['apcer'] == {'mask': 0, 'print': 1 / 2}
    assert (metrics['apcer_max'], metrics['worst_species']) == (1 / 2, 'print')
    assert metrics['bpcer'] == 1 / 4
    assert metrics['acer'] == (1 / 2 + 1 / 4) / 2
    assert document['accuracy_by_input_type'] == {
        'P2': {'live': 3 / 4, 'print': 1 / 2, 'mask': 1, 'overall': 6 / 8}
    }
    assert document['subjects'] == {'live': 2, 'mask': 2, 'print': 2}

    markdown = (out / 'report.md').read_text()
    assert file_sha256(model) in markdown and 'toy-v1' in markdown
    assert '| P2 | 75.0 % | 50.0 % | 100.0 % | 75.0 % |' in markdown
    assert '| **max (worst species: print)** | | | **50.00 %** |' in markdown
    assert 'threshold 0.625 chosen as the lowest threshold with max APCER <= 1%' in markdown
    assert '(det.png)' in markdown and '(scores.png)' in markdown
    assert imread(out / 'det.png').shape[2] in (3, 4)


def test_cli_ablation_rows_history_and_separate_validation_file(tmp_path, scores_csv):
    val_file = write_npz(tmp_path / 'val.npz', VAL_ROWS)
    test_only = write_npz(tmp_path / 'test.npz', TEST_ROWS)
    # P3 has no masks in its test split: its mask cell reads n/a, not 100 %
    p3 = write_csv(tmp_path / 'p3.csv', VAL_ROWS + [row for row in TEST_ROWS if row[2] != 'mask'])
    history = tmp_path / 'history.json'
    history.write_text(json.dumps([
        {'epoch': epoch, 'loss': 1 / epoch, 'val_loss': 1.2 / epoch, 'accuracy': 0.9,
         'val_accuracy': 0.85, 'lr': 1e-3, 'val_accuracy_mask': 0.8} for epoch in (1, 2, 3)
    ]))
    out = tmp_path / 'ablation'
    assert main(['--scores', str(test_only), '--val-scores', str(val_file), '--out', str(out),
                 '--input-type', 'P2', '--compare', f'P3={p3}', '--history', str(history),
                 '--threshold', 'bpcer100']) == 0
    markdown = (out / 'report.md').read_text()
    assert '| P2 | 75.0 % | 50.0 % | 100.0 % | 75.0 % |' in markdown
    assert '| P3 | 75.0 % | 50.0 % | n/a | 66.7 % |' in markdown
    assert "no attack presentations of type 'mask'" not in markdown  # P2 itself has masks
    assert (out / 'training.png').is_file() and '(training.png)' in markdown


def test_fixed_threshold_needs_no_validation_rows(tmp_path):
    scores = write_csv(tmp_path / 'test.csv', TEST_ROWS)
    out = tmp_path / 'fixed'
    assert main(['--scores', str(scores), '--out', str(out), '--threshold', '0.5']) == 0
    document = json.loads((out / 'metrics.json').read_text())
    assert document['threshold'] | {'description': ''} == {
        'value': 0.5, 'target': 'fixed', 'description': '', 'validation': None
    }
    # at 0.5: every live face accepted; print 0.7 and mask 0.62 accepted
    assert document['metrics']['bpcer'] == 0
    assert document['metrics']['apcer'] == {'mask': 1 / 2, 'print': 1 / 2}


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / 'empty.csv'
    empty.write_text('')
    header_only = write_csv(tmp_path / 'header.csv', [])
    no_subject = write_csv(tmp_path / 'nosubject.csv', [row[:4] for row in TEST_ROWS],
                           columns=COLUMNS[:4])
    bad_label = write_csv(tmp_path / 'label.csv', [(0.5, 2, 'live', 'test', 'a')])
    word_score = write_csv(tmp_path / 'word.csv', [('high', 1, 'live', 'test', 'a')])
    no_val = write_csv(tmp_path / 'noval.csv', TEST_ROWS)
    objects = tmp_path / 'objects.npz'
    np.savez(objects, **{name: np.array([1, 'x'], dtype=object) for name in COLUMNS})
    return {
        'empty file': ([str(empty)], 'empty file'),
        'header only': ([str(header_only)], 'no presentations'),
        'missing column': ([str(no_subject)], 'missing columns subject'),
        'label not 0/1': ([str(bad_label)], 'labels must be 0 (attack) or 1 (bona fide)'),
        'score not a number': ([str(word_score)], "column score holds 'high'"),
        'no validation rows': ([str(no_val)], "no rows of split 'validation'"),
        'unknown target': ([str(no_val), '--threshold', 'best'], "threshold target 'best'"),
        'python objects in npz': ([str(objects)], 'not a readable .npz'),
        'unknown suffix': ([str(tmp_path / 'scores.txt')], 'no such file'),
    }


def test_cli_refuses_bad_input_with_one_line_and_exit_2(tmp_path, capsys):
    for case, (arguments, message) in _bad_inputs(tmp_path).items():
        out = tmp_path / 'out' / case
        assert main(['--scores', *arguments, '--out', str(out)]) == 2, case
        error = capsys.readouterr().err
        assert error.startswith('error: ') and error.count('\n') == 1, (case, error)
        assert message in error, (case, error)
        assert not out.exists(), case
    assert not (tmp_path / 'out').exists()


def test_module_entry_point_prints_no_traceback(tmp_path):
    bad = write_csv(tmp_path / 'label.csv', [(0.5, 7, 'live', 'test', 'a')])
    completed = subprocess.run(
        [sys.executable, '-m', 'antispoof_ros.offline.evaluation', '--scores', str(bad),
         '--out', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f'error: {bad}: labels must be 0 (attack) or 1 (bona fide), found 7'
    ]


def test_load_score_table_reads_csv_and_npz_alike(tmp_path):
    from_csv = load_score_table(write_csv(tmp_path / 's.csv', TEST_ROWS))
    from_npz = load_score_table(write_npz(tmp_path / 's.npz', TEST_ROWS))
    for table in (from_csv, from_npz):
        assert table.presentations.scores.tolist() == [row[0] for row in TEST_ROWS]
        assert table.presentations.labels.tolist() == [row[1] for row in TEST_ROWS]
        assert table.subject_counts() == {'live': 2, 'mask': 2, 'print': 2}
    with pytest.raises(ScoreFileError, match='unknown score file type'):
        (tmp_path / 's.txt').write_text('score\n')
        load_score_table(tmp_path / 's.txt')


def _request(tmp_path: Path, history=None) -> ReportRequest:
    table = load_score_table(write_csv(tmp_path / 'scores.csv', TEST_ROWS)).select_split('test')
    return ReportRequest(test=table, choice=ThresholdChoice(0.625, 'fixed'),
                         model=ModelIdentity('toy'), data_id='toy', history=history)


def test_failed_report_leaves_the_previous_one_untouched(tmp_path):
    out = tmp_path / 'report'
    write_report(out, _request(tmp_path))
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    with pytest.raises(ValueError, match='lacks'):
        write_report(out, _request(tmp_path, history=[{'epoch': 1}]))
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_failed_report_creates_no_folder(tmp_path):
    out = tmp_path / 'new' / 'report'
    with pytest.raises(ValueError, match='lacks'):
        write_report(out, _request(tmp_path, history=[{'epoch': 1}]))
    assert not (tmp_path / 'new').exists()


def test_accuracy_table_like_thesis_table_4_1():
    p1 = evaluate_at_threshold([0.9, 0.2, 0.6], [1, 0, 0], ['live', 'print', 'mask'], 0.5)
    single = evaluate_at_threshold([0.4, 0.2], [1, 0], ['live', 'screen'], 0.5)
    assert accuracy_table({'P1': p1, 'single_front': single}).splitlines() == [
        '| Input type | Live acc. | Print acc. | Mask acc. | Screen acc. | Overall acc. |',
        '|---|---:|---:|---:|---:|---:|',
        '| P1 | 100.0 % | 100.0 % | 0.0 % | n/a | 66.7 % |',
        '| single_front | 0.0 % | n/a | n/a | 100.0 % | 50.0 % |',
    ]
