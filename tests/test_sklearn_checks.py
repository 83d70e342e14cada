"""scikit-learn's own estimator checks on :class:`likelab.sklearn.ObjectiveClassifier`.

Every check of the installed scikit-learn runs; none is expected to fail, so none is listed in
``expected_failed_checks``. scikit-learn itself skips (with its reason) the array-API check when
``SCIPY_ARRAY_API`` is unset and the pandas checks when pandas is not installed. The checked
instance trains briefly (5 full-batch epochs) to keep the ~55 checks fast; it uses a non-default
objective and a hidden layer so that the checks see the ``Categorical`` path of the trainer, not
only the fused cross-entropy of ``log``.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from likelab.sklearn import ObjectiveClassifier

CHECKED = ObjectiveClassifier("brier", "mlp:8", epochs=5, batch_size=0, lr=0.3, random_state=0)


@parametrize_with_checks([CHECKED])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
