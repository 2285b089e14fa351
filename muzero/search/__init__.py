"""Batched MCTS: B trees as preallocated arrays, searched by Numba kernels one step at a time."""

from muzero.search.batched import NumbaTree, SearchTree
from muzero.search.mcts import MCTS, SearchResult
from muzero.search.model import InitialOutput, Model, RecurrentOutput
from muzero.search.reference import ReferenceTree
from muzero.search.tree import SearchSettings

__all__ = ["MCTS", "InitialOutput", "Model", "NumbaTree", "RecurrentOutput", "ReferenceTree",
           "SearchResult", "SearchSettings", "SearchTree"]
