"""Optuna studies of a model's hyperparameters: what a study is (``study``), where it is
stored (``storage``), the search that fills it (``search``), running and evaluating one
(``tune``), and its report (``report``)."""
