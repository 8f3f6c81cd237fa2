"""The experiments built on the suite: the paper tables, the sanity table, the medium
tuning table, the gradient-control study and paper (b)'s H-DNN experiments."""
