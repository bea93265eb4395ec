"""Bidirectional GRU over embedded tokens (the paper: embedding 64, hidden 64)."""
from torch import nn

from lopmodels.base import MODELS
from lopmodels.recurrent import BidirectionalClassifier


@MODELS.register("gru")
class GRU(BidirectionalClassifier):
    cell = nn.GRU
    cell_name = "gru"
    gates = 3  # r, z, n
