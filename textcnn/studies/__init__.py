"""Studies built on the library, at the edge of the package: nothing in the core imports them.

- :mod:`.compare`: ``textcnn compare``, one conv core on text and on images, in one report;
- :mod:`.peers`: the linear peer baselines (TF-IDF + logistic regression / LinearSVC, fastText);
- :mod:`.reproduce`: a textcnn config over seeds (test split) or folds (cross-validation).
"""
