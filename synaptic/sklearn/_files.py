"""save / load of a fitted estimator in synaptic's own file format (no pickle).

The net is written by :func:`synaptic.persist.save_neural_net_file` (JSON metadata and .npz
arrays: weights, optimiser state, stats); the estimator's parameters and fitted attributes
travel in the net's header under ``"sklearn"``, as JSON.
"""
import numpy as np
from sklearn.preprocessing import LabelBinarizer

from ..persist import load_neural_net_file, save_neural_net_file

ATTRIBUTES = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
              "best_validation_score_", "n_outputs_", "n_layers_", "out_activation_",
              "n_features_in_", "_no_improvement_count", "_lookahead", "_targets")
KEY = "sklearn"


def _jsonable_params(est):
    params = est.get_params(deep=False)
    if isinstance(params["hidden_layer_sizes"], tuple):
        params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
    params["dtype"] = np.dtype(params["dtype"]).name
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState instance: its draws are spent
    return params


def save(estimator, path):
    """Write a fitted MLPClassifier or MLPRegressor to ``path``.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted.
    path : str or os.PathLike
        The file to write (replaced atomically).

    Returns
    -------
    None

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.

    Examples
    --------
    >>> import os, tempfile
    >>> from synaptic.sklearn import MLPClassifier, load, save
    >>> clf = MLPClassifier((4,), max_iter=20, random_state=0).fit([[0], [1]] * 10, [0, 1] * 10)
    >>> path = os.path.join(tempfile.mkdtemp(), "clf")
    >>> save(clf, path)
    >>> (load(path).predict([[0], [1]]) == clf.predict([[0], [1]])).all()
    np.True_
    """
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(estimator)
    meta = {"class": type(estimator).__name__, "params": _jsonable_params(estimator),
            "attributes": {k: getattr(estimator, k) for k in ATTRIBUTES if hasattr(estimator, k)}}
    if hasattr(estimator, "feature_names_in_"):
        meta["feature_names_in_"] = [str(v) for v in estimator.feature_names_in_]
    if hasattr(estimator, "classes_"):
        lb = estimator._label_binarizer
        meta["classes"] = np.asarray(lb.classes_).tolist()
        meta["y_type"] = lb.y_type_
    net = estimator.net_
    header = net.header
    net.header = {**header, KEY: meta}
    try:
        save_neural_net_file(net, path)
    finally:
        net.header = header


def load(path):
    """The estimator that :func:`save` wrote to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    MLPClassifier or MLPRegressor
        Fitted, ready to predict or to train on (warm_start, partial_fit).

    Raises
    ------
    synaptic.FileFormatError
        Not a synaptic net file.
    ValueError
        A net file without an estimator.

    Examples
    --------
    >>> from synaptic.sklearn import load
    >>> load("no/such/file")  # doctest: +SKIP
    """
    from . import MLPClassifier, MLPRegressor
    net = load_neural_net_file(path)
    meta = net.header.pop(KEY, None)
    classes = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    if not isinstance(meta, dict) or meta.get("class") not in classes:
        raise ValueError(f"{path} holds a synaptic net, not a saved estimator")
    params = dict(meta["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = classes[meta["class"]](**params)
    for key, value in meta["attributes"].items():
        setattr(est, key, value)
    if "feature_names_in_" in meta:
        est.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
    if "classes" in meta:
        lb = LabelBinarizer()
        if meta["y_type"].startswith("multilabel"):
            lb.fit(np.eye(len(meta["classes"]), dtype=int))
        else:
            lb.fit(np.asarray(meta["classes"]))
        est._label_binarizer = lb
        est.classes_ = lb.classes_
    est.net_ = net
    return est
