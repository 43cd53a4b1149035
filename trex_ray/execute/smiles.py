"""A small SMILES parser for TOMG-Bench's success metric: syntax, rings, branches, organic-subset
valences; no RDKit. ``parse_smiles`` gives the molecule's heavy-atom counts, or None when the text
is not a valid molecule.

Example::

    >>> parse_smiles("C C ( = O ) O").counts()
    Counter({'C': 2, 'O': 2})
    >>> parse_smiles("C C ( O") is None
    True
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Molecule", "parse_smiles"]

_SMILES_TOKEN = re.compile(
    r"(\[[^\[\]]+\]|Br|Cl|B|C|N|O|P|S|F|I|b|c|n|o|p|s|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|\*|\$|%\d{2}|\d)"
)
_VALENCE = {
    "B": (3,),
    "C": (4,),
    "N": (3, 5),
    "O": (2,),
    "P": (3, 5),
    "S": (2, 4, 6),
    "F": (1,),
    "Cl": (1,),
    "Br": (1,),
    "I": (1,),
}
_BONDS = {"-": 1, "=": 2, "#": 3, ":": 1, "/": 1, "\\": 1, "$": 4}


@dataclass
class Molecule:
    """What ``parse_smiles`` learned: heavy-atom counts and bond-order sums per atom."""

    atoms: list[str] = field(default_factory=list)
    bonds: list[int] = field(default_factory=list)  # per atom: sum of bond orders
    checked: list[bool] = field(default_factory=list)  # organic-subset atoms get a valence check

    def add(self, symbol: str, checked: bool) -> int:
        self.atoms.append(symbol)
        self.bonds.append(0)
        self.checked.append(checked)
        return len(self.atoms) - 1

    def bond(self, a: int, b: int, order: int) -> None:
        self.bonds[a] += order
        self.bonds[b] += order

    def counts(self) -> Counter[str]:
        return Counter(self.atoms)

    def valences_ok(self) -> bool:
        for symbol, total, checked in zip(self.atoms, self.bonds, self.checked, strict=True):
            if checked and total > max(_VALENCE.get(symbol.capitalize(), (4,))):
                return False
        return True


def _bracket_symbol(token: str) -> str:
    m = re.match(r"\[\d*([A-Z][a-z]?|[a-z]{1,2})", token)
    return m.group(1).capitalize() if m else "*"


class _SmilesError(ValueError):
    pass


def _walk(tokens: list[str]) -> Molecule:
    mol, stack, rings = Molecule(), [], {}
    prev: int | None = None
    bond, last = None, ""
    for tok in tokens:
        if tok == ")" and last == "(":
            raise _SmilesError("empty branch")
        last = tok
        if tok in _BONDS:
            if bond is not None or prev is None:
                raise _SmilesError("bond without a left atom")
            bond = _BONDS[tok]
        elif tok == "(":
            if prev is None or bond is not None:
                raise _SmilesError("branch without an atom")
            stack.append(prev)
        elif tok == ")":
            if not stack or bond is not None:
                raise _SmilesError("unbalanced branch")
            prev = stack.pop()
        elif tok == ".":
            if bond is not None or stack:
                raise _SmilesError("dot inside a branch or after a bond")
            prev = None
        elif tok[0].isdigit() or tok.startswith("%"):
            if prev is None:
                raise _SmilesError("ring number without an atom")
            if tok in rings:
                other, order = rings.pop(tok)
                if other == prev:
                    raise _SmilesError("ring bond to itself")
                mol.bond(prev, other, bond or order or 1)
            else:
                rings[tok] = (prev, bond)
            bond = None
        elif tok in ("+", "@", "?", "*", "~"):
            raise _SmilesError(f"{tok!r} outside brackets")
        else:
            bracket = tok.startswith("[")
            atom = mol.add(_bracket_symbol(tok) if bracket else tok.capitalize(), not bracket)
            if prev is not None:
                mol.bond(prev, atom, bond or 1)
            prev, bond = atom, None
    if stack or rings or bond is not None or not mol.atoms:
        raise _SmilesError("unclosed branch or ring, dangling bond, or no atom")
    return mol


def parse_smiles(text: str) -> Molecule | None:
    """A Molecule if ``text`` (spaces ignored) is a valid SMILES string, else None."""
    compact = re.sub(r"\s+", "", str(text))
    tokens = _SMILES_TOKEN.findall(compact)
    if not compact or "".join(tokens) != compact:
        return None
    try:
        mol = _walk(tokens)
    except _SmilesError:
        return None
    return mol if mol.valences_ok() else None
