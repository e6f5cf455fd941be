"""How a cross-validated study's selected hyperparameters are written in its report. The
study itself runs as stages on the engine: scalelab.studies (_cv.py, _cv_fit.py)."""

SELECT_LABEL = {"optim.l2": "λ₂", "optim.l1": "λ₁", "cv.pca": "k", "cv.C": "C"}
