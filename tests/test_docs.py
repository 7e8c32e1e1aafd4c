"""Every public name has a numpydoc docstring whose examples run, and help(synaptic.training)
lists every algorithm and every params key (it is generated from the schema)."""
import doctest
import inspect
import re

import pytest

import synaptic
from synaptic.training import params

PUBLIC = sorted(synaptic.__all__)
try:  # synaptic.sklearn's public names (the estimators, save, load) when scikit-learn is there
    import synaptic.sklearn as _sk
    SKLEARN_PUBLIC = sorted(_sk.__all__)
except ImportError:
    _sk, SKLEARN_PUBLIC = None, []
# Functions that return nothing (no Returns section needed) and context managers (Yields).
NO_RETURN = {"set_backend", "set_num_threads"}
YIELDS = {"backend", "num_threads"}


def section(doc, name):
    return re.search(rf"^\s*{name}\n\s*-{{{len(name)}}}\s*$", doc, re.MULTILINE) is not None


def own_parameters(obj):
    """The parameters a caller passes (none for a class that keeps its base's constructor)."""
    if inspect.isclass(obj):
        if issubclass(obj, BaseException) and "__init__" not in vars(obj):
            return []
        obj = obj.__init__ if "__init__" in vars(obj) else obj
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p != "self"]


def test_all_lists_exactly_the_names_imported_by_the_package():
    imported = {name for name, value in vars(synaptic).items()
                if not name.startswith("_") and not inspect.ismodule(value)}
    assert set(synaptic.__all__) == imported


def _public(name):
    return getattr(_sk, name[len("sklearn."):]) if name.startswith("sklearn.") \
        else getattr(synaptic, name)


ALL_PUBLIC = PUBLIC + [f"sklearn.{n}" for n in SKLEARN_PUBLIC]


@pytest.mark.parametrize("name", ALL_PUBLIC)
def test_every_public_name_has_a_numpydoc_docstring(name):
    obj = _public(name)
    doc = inspect.getdoc(obj)
    assert doc and len(doc.splitlines()) >= 5, f"{name}: no real docstring"
    assert section(doc, "Examples"), f"{name}: no Examples section"
    if own_parameters(obj):
        assert section(doc, "Parameters"), f"{name}: no Parameters section"
        documented = set(re.findall(r"^(\w+)(?:, \w+)*\s*:", doc, re.MULTILINE)) | {
            n.strip() for line in re.findall(r"^([\w, ]+) :", doc, re.MULTILINE)
            for n in line.split(",")}
        missing = [p for p in own_parameters(obj) if p not in documented]
        assert not missing, f"{name}: parameters not documented: {missing}"
    if inspect.isfunction(obj) and name not in NO_RETURN | {"sklearn.save"}:
        assert section(doc, "Yields" if name in YIELDS else "Returns"), f"{name}: no Returns"


@pytest.mark.parametrize("name", ALL_PUBLIC)
def test_the_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save write into ./data of a scratch folder
    monkeypatch.delenv("SYNAPTIC_DATA", raising=False)
    obj = _public(name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(obj, name, globs={}):
        runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} failing example(s) (see above)"


def schema_keys(schema=params.SCHEMA, prefix=""):
    for key, kind in schema.items():
        yield prefix + key
        if isinstance(kind, dict):
            yield from schema_keys(kind, f"{prefix}{key}.")


def test_training_doc_lists_every_algorithm_and_every_key_with_its_default():
    doc = synaptic.training.__doc__
    for algo in params.ALGOS:
        assert f"``{algo!r}``" in doc
    for key in schema_keys():
        line = next((l for l in doc.splitlines() if l.startswith(f"``{key}`` : ")), None)
        assert line is not None, f"{key} is not documented"
        if not isinstance(params._lookup(params.SCHEMA, key), dict):
            assert re.search(r"default |required|left out", line), line
    assert "``rprop.eta_plus`` : number, default 1.2 (rprop)" in doc
    assert ("``learning_rate.epsilon`` : number, default 0.01 (backprop, rmsprop), 0.001 for adam"
            in doc)
    assert "``learning_rate.adaptive`` : bool, default False (backprop, rmsprop)" in doc
    assert "``lbfgs.m`` : int, default 5 (lbfgs)" in doc
    assert "``error_fn`` : str, default 'cross-entropy', 'misclassification' for perceptron" in doc


def test_the_documented_defaults_are_the_ones_the_algorithms_use():
    from synaptic.training import lbfgs, rprop
    assert rprop.Rprop.options({}) == {**params.DEFAULTS["rprop"]["rprop"],
                                       **params.IMPLIED["rprop"]}
    algo = lbfgs.LBFGS(synaptic.mlp([2, 2], "softmax", synaptic.training("lbfgs")))
    implied = params.IMPLIED["lbfgs"]
    assert {k: getattr(algo, k) for k in implied} == implied
    assert (lbfgs.M, lbfgs.EPS, lbfgs.MAXLS) == (implied["m"], implied["eps"], implied["maxls"])
    net = synaptic.mlp([2, 2], "softmax", synaptic.training("rmsprop"))
    from synaptic.training.rmsprop import RMSprop
    algo = RMSprop(net)
    assert (algo.decay, algo.eps) == (0.9, params.IMPLIED["rmsprop"]["eps"])


def test_multi_channel_input_is_documented():
    assert "[k, w, h]" in inspect.getdoc(synaptic.neural_net)
    assert "channel-major" in inspect.getdoc(synaptic.training_set)
