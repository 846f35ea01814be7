"""Sphinx configuration: the API reference from the docstrings (numpydoc) and the
guide and notes from Markdown (MyST). Built with warnings as errors in .ci/run:
``python -m sphinx -W --keep-going -b html docs <out>``."""

import ferroconv

project = "ferroconv"
author = "the ferroconv developers"
release = ferroconv.__version__
version = release

extensions = ["sphinx.ext.autodoc", "numpydoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# The README's tutorial is included in the guide; its links point into the
# repository, so the guide page resolves them itself.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_member_order = "bysource"
# The torch bridge's modules subclass torch.nn's: their methods without a docstring
# of their own would show PyTorch's (whose reST does not build here).
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"ferroconv {release}"
