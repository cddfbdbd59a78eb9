"""Install the ``distill`` package (editable: ``pip install -e .``).

The heavy stack (torch, k2, kaldifeat, lhotse) is installed by ``tools/install.sh`` from
``requirements.txt``; it is not repeated in ``install_requires`` so that pip never tries to
replace the torch build k2 was compiled against.
"""
from setuptools import find_packages, setup

setup(
    name="distill",
    version="0.1.0",
    description="Kaldi-style recipes (k2/lhotse) for distilling a pruned-transducer "
    "teacher into small RNN-T students",
    packages=find_packages(include=["distill", "distill.*"]),
    python_requires=">=3.11,<3.12",
    entry_points={"console_scripts": ["distill-transcribe=distill.deploy.cli:main"]},
)
