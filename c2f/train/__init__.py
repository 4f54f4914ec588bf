"""Training: losses, augmentation and the training loop."""

from c2f.train.trainer import TrainResult, TrainSettings, train_model

__all__ = ["TrainResult", "TrainSettings", "train_model"]
