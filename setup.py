"""Build hook: the wheel carries the top-level ``configs/`` and ``models/demo/`` as package data.

Everything else is declared in ``pyproject.toml``. The checkout keeps those folders at the top
level (the project's layout); :mod:`polarscan.resources` finds either copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = {"configs": "*.yaml", "models/demo": "*"}


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's folders directly
            return
        for folder, pattern in BUNDLED.items():
            dest = Path(self.build_lib) / "polarscan" / "_bundled" / folder
            dest.mkdir(parents=True, exist_ok=True)
            for src in sorted((ROOT / folder).glob(pattern)):
                if src.is_file():
                    shutil.copy2(src, dest / src.name)


setup(cmdclass={"build_py": BuildWithResources})
