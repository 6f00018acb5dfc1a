"""Build the Cython placement kernel ``numasched._core``.

Cython directives are set here, once, for the whole extension. Set
``NUMASCHED_DEBUG_BOUNDS=1`` while building to turn bounds checking and
wraparound back on when hunting a kernel bug.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("NUMASCHED_DEBUG_BOUNDS") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,  # every division in the kernel has non-negative operands
    "nonecheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(
        "numasched._core",
        ["numasched/_core.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, annotate=False))
