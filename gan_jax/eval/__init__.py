"""Evaluation: numbers and pictures from a saved model. `evaluate.py` is the entry point
(--mode=eval, --mode=sample, and the metrics logged during training); `held_out.py` reads the
validation and test splits once; `game_metrics.py` the §7 games' own numbers; `parzen.py` (Table 1),
`metrics.py`, `classifier.py`, `fid.py` and `inception.py` the metrics; `figures.py` and
`figure1.py` the paper's figures. Nothing here imports the training loop."""
