"""Evaluation of liveness models in the ISO/IEC 30107-3 vocabulary: metrics, figures, reports.

``metrics`` computes APCER per PAI species, BPCER, ACER, BPCER20/BPCER100, EER and the thesis
accuracies; ``plots`` draws DET curves, training histories and score histograms; ``report``
writes a Markdown + JSON report; ``python -m antispoof_ros.offline.evaluation`` builds one from a
saved score file. ``corner_source`` compares a model's figures with ground-truth and detected eye
corners; ``sealed`` freezes a model, then scores a second protocol seed's test split once.
"""
