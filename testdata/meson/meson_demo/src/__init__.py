"""PyMode's meson-python fixture: `_cdemo` (C, a static library and libm) and `_cxxdemo` (C++)."""

from ._cdemo import config, norm
from ._cxxdemo import sorted_words, word_counts
