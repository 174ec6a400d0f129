"""Entry point of `python -m sizing`."""

import os
import sys

# pydantic looks for plugins in the entry points of every installed distribution when it builds the first model:
# with pulumi's packages in the environment that scan costs ~80 ms of a 0.5 s `plan`, and this project uses no
# plugin. Set before pydantic is imported; a value the user set wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from sizing.cli.commands import main

sys.exit(main())
