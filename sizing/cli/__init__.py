"""`python -m sizing`: the parser and commands (`commands`), the plan comparison (`compare`) and table layout
(`tables`). The top layer: it may import every other part of `sizing`, and nothing imports it."""
