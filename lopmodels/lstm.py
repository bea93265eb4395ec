"""Bidirectional LSTM (the paper: hidden 25, images as 28 rows of 28 pixels)."""
from torch import nn

from lopmodels.base import MODELS
from lopmodels.recurrent import BidirectionalClassifier


@MODELS.register("lstm")
class LSTM(BidirectionalClassifier):
    cell = nn.LSTM
    cell_name = "lstm"
    gates = 4  # i, f, g, o
