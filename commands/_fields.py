"""Argument fields shared by the command modules, with the Atlas spec's own patterns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from bot.atlas.patterns import CLUSTER_NAME, OBJECT_ID

__all__ = ["CLUSTER_NAME", "OBJECT_ID", "PROFILE_NAME", "Args", "ClusterName", "ObjectId", "ProfileName"]

PROFILE_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"

ObjectId = Annotated[str, StringConstraints(pattern=OBJECT_ID)]
# Atlas caps cluster names at 64 characters; the spec's pattern alone would allow any length.
ClusterName = Annotated[str, StringConstraints(pattern=CLUSTER_NAME, max_length=64)]
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME)]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
