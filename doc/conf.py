"""Sphinx configuration of the skmoe documentation."""

import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath(".."))

import skmoe  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# The gallery runs single-threaded: on a machine shared with other jobs,
# OpenMP experts (HistGradientBoosting) spin-wait for busy cores and run tens
# of times slower (measured: the routing example took 262 s with the default
# threads under load and 6 s with one thread).
threadpool_limits(1)

project = "skmoe"
author = "The skmoe developers"
copyright = f"{date.today().year}, {author}"
version = release = skmoe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    # MathJax from a wheel (the docs extra) instead of a CDN: the equations
    # render where the reader is offline. It sets mathjax_path to its copy,
    # _static/mathjax/tex-chtml.js.
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# The page's table of contents lists methods as ``fit()``, ``predict()``, not
# ``MixtureOfExpertsRegressor.predict()``, which the theme's narrow column cut
# to ``MixtureOfExpertsRegressor.pre``.
toc_object_entries_show_parents = "hide"

# No network here: intersphinx inventories are not fetched; references to
# scikit-learn, joblib and Python's exceptions are resolved by
# _resolve_sklearn_reference below, any others render as plain text.
intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = "skmoe"
html_static_path = ["_static"]
html_css_files = ["skmoe.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}
# Pages without sub-pages: no empty "Section Navigation" column beside them.
html_sidebars = {"install": [], "user_guide": [], "changes": []}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "doc_module": ("skmoe",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skmoe": None},
    "filename_pattern": r"/plot_",
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

nitpicky = False


# Docstrings inherited from scikit-learn (``score``, ``set_*_request``) cite
# scikit-learn's own labels and glossary terms, and our docstrings name
# scikit-learn, joblib and Python objects (``Ridge``, ``GridSearchCV``,
# ``TypeError``). With no network at build time no intersphinx inventory can
# be fetched, so these targets are resolved to the projects' pages here
# (scikit-learn's documented public paths: ``modules/generated/<path>.html``);
# any other missing reference still fails the build (-W).
_SKLEARN_DOCS = "https://scikit-learn.org/stable/"
_SKLEARN_LABELS = {
    "r2_score": "modules/model_evaluation.html#r2-score",
    "accuracy_score": "modules/model_evaluation.html#accuracy-score",
    "metadata_routing": "metadata_routing.html",
}
_SKLEARN_TERMS = {"meta-estimator"}
_JOBLIB_DOCS = "https://joblib.readthedocs.io/en/stable/generated/"
_PYTHON_DOCS = "https://docs.python.org/3/library/"


def _python_object_uri(reftype, target):
    """The page of a scikit-learn, joblib or builtin object, or None."""
    import builtins

    parts = target.split(".")
    if parts[0] == "sklearn":
        if reftype == "mod":
            return _SKLEARN_DOCS + "api/" + ".".join(parts[:2]) + ".html"
        if len(parts) >= 3 and parts[-2][:1].isupper():  # a method or attribute
            return (_SKLEARN_DOCS + "modules/generated/" + ".".join(parts[:-1])
                    + ".html#" + target)
        return _SKLEARN_DOCS + "modules/generated/" + target + ".html"
    if parts[0] == "joblib" and len(parts) == 2:
        return _JOBLIB_DOCS + target + ".html"
    obj = getattr(builtins, target, None) if len(parts) == 1 else None
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return _PYTHON_DOCS + "exceptions.html#" + target
    return None


def _resolve_sklearn_reference(app, env, node, contnode):
    from docutils import nodes

    target = node.get("reftarget", "")
    reftype = node.get("reftype")
    if reftype == "ref" and target in _SKLEARN_LABELS:
        uri = _SKLEARN_DOCS + _SKLEARN_LABELS[target]
    elif reftype == "term" and target in _SKLEARN_TERMS:
        uri = _SKLEARN_DOCS + "glossary.html#term-" + target
    elif node.get("refdomain") == "py":
        uri = _python_object_uri(reftype, target)
        if uri is None:
            return None
    else:
        return None
    reference = nodes.reference("", "", internal=False, refuri=uri)
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", _resolve_sklearn_reference)
