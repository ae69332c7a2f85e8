"""The one container-image parser: `registry/repository[:tag][@digest]` into one OCSF `image`.

Every source gives the same image the same shape, so that one image seen by GuardDuty, Defender,
SCC and Inspector is one image: `uid` is the digest when it is known (the only identity that does
not move when a tag does), else the reference without a digest (`registry/repository:tag`);
`name` is `registry/repository`; `tag` the tag.
"""

from __future__ import annotations

from typing import Any


def split(reference: str) -> tuple[str, str | None, str | None]:
    """Return (registry/repository, tag, digest) of an image reference; parts may be missing.

    Example:
        >>> split("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.2@sha256:ab")
        ('123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web', '1.2', 'sha256:ab')
        >>> split("localhost:5000/web")
        ('localhost:5000/web', None, None)
    """
    name, _, digest = reference.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):  # a colon before the last slash is a registry port
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag or None, digest or None


def image(reference: str | None, digest: str | None = None, tag: str | None = None) -> dict[str, Any] | None:
    """Return the OCSF `image` of a reference and/or digest (None when there is neither).

    `digest` (a separately reported image id) wins over one in the reference; `tag` stands in when
    the reference has none (registries that report tags apart from the repository).

    Example:
        >>> image("registry.example/shop/web:1.2", "sha256:ab")
        {'uid': 'sha256:ab', 'name': 'registry.example/shop/web', 'tag': '1.2'}
        >>> image("registry.example/shop/web:1.2")
        {'uid': 'registry.example/shop/web:1.2', 'name': 'registry.example/shop/web', 'tag': '1.2'}
    """
    name: str | None = None
    if reference:
        name, found_tag, found_digest = split(reference)
        tag = found_tag or tag
        digest = digest or found_digest
    if not name:
        return {"uid": digest} if digest else None
    uid = digest or (f"{name}:{tag}" if tag else name)
    shape: dict[str, Any] = {"uid": uid, "name": name}
    if tag:
        shape["tag"] = tag
    return shape
