"""Encoders (one file per backbone) behind one registry. Implemented by the integrator; extend in place."""

from c2f.encoders.clip import ClipEncoder, TextEmbedding
from c2f.encoders.milnce_s3dg import MilNceS3DGEncoder
from c2f.encoders.registry import create_clip_encoder, create_s3d_encoder
from c2f.encoders.s3d import S3DEncoder

__all__ = [
    "ClipEncoder",
    "MilNceS3DGEncoder",
    "S3DEncoder",
    "TextEmbedding",
    "create_clip_encoder",
    "create_s3d_encoder",
]
