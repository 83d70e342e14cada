"""likelab in Python: a scikit-learn classifier, scoringrules-style scores, scipy forecasts."""

import numpy as np
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import likelab
from likelab.sklearn import ObjectiveClassifier

# 1. A scikit-learn classifier trained with any likelab objective.
X, y = load_iris(return_X_y=True)
pipe = make_pipeline(StandardScaler(), ObjectiveClassifier("log", "logistic", random_state=0))
grid = GridSearchCV(pipe, {"objectiveclassifier__objective": ["log", "brier", "gce:q=0.7"]}, cv=3)
grid.fit(X, y)
print(grid.best_params_, round(grid.best_score_, 3))

# 2. One score per observation, as scoringrules computes them.
obs = np.array([-0.5, 0.0, 2.0])
print(likelab.score("crps", "normal", obs, loc=0.0, scale=1.0))
print(likelab.score("dpd:beta=0.5", "student_t:df=3", obs, loc=0.0, scale=1.0))
print(likelab.score("brier", "categorical", [0, 2], probs=[[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]]))

# 3. A frozen scipy.stats distribution as the forecast.
print(likelab.score("crps", scipy.stats.gamma(2.0, scale=1.5), [0.5, 3.0]))
print(likelab.get_objective("log")(scipy.stats.t(3, loc=1.0), obs))
