"""Adam for continual learning. (Placeholder alias until the per-element version lands; see issue 5.)"""
from torch.optim import Adam

__all__ = ["Adam"]
