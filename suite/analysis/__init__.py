"""Reading records: statistics, plots, the report and its overview figure, the gradient
study's tables, and the exporters. Built on the core; never runs a model."""
