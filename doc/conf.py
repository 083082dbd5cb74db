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
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# No network here: intersphinx inventories are not fetched, so references to
# scikit-learn, numpy and scipy render as plain text rather than failing.
intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = "skmoe"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}

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
# scikit-learn's own labels and glossary terms. With no network at build time
# no intersphinx inventory can be fetched, so these known targets are resolved
# to scikit-learn's pages here; any other missing reference still fails the
# build (-W).
_SKLEARN_DOCS = "https://scikit-learn.org/stable/"
_SKLEARN_LABELS = {
    "r2_score": "modules/model_evaluation.html#r2-score",
    "accuracy_score": "modules/model_evaluation.html#accuracy-score",
    "metadata_routing": "metadata_routing.html",
}
_SKLEARN_TERMS = {"meta-estimator"}


def _resolve_sklearn_reference(app, env, node, contnode):
    from docutils import nodes

    target = node.get("reftarget", "")
    if node.get("reftype") == "ref" and target in _SKLEARN_LABELS:
        uri = _SKLEARN_DOCS + _SKLEARN_LABELS[target]
    elif node.get("reftype") == "term" and target in _SKLEARN_TERMS:
        uri = _SKLEARN_DOCS + "glossary.html#term-" + target
    else:
        return None
    reference = nodes.reference("", "", internal=False, refuri=uri)
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", _resolve_sklearn_reference)
