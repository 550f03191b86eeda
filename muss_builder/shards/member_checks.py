"""What a shard member's header must be before any of its bytes are read: a safe, flat
``KEY.EXT`` name, a regular file, and extended (pax, GNU long-name) headers of bounded size
and depth. Used by ``shards.reader``, which every reader of shards goes through."""

from __future__ import annotations

import tarfile
import unicodedata

# pax and GNU long-name headers are read whole by tarfile (and chained recursively): bound both
_MAX_HEADER_BYTES = 64 * 1024
_MAX_HEADER_CHAIN = 8
_EXTENDED = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_MAX_NAME_BYTES = 255  # a file name component on every common file system
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control, format (bidi), surrogate, breaks


def name_problem(name: str) -> str | None:
    """Why a member name is refused (checked before anything is written or printed), or None."""
    if "\0" in name:
        return "NUL character in the name"
    bad = next((ch for ch in name if unicodedata.category(ch) in _BAD_CATEGORIES), None)
    if bad is not None:
        if unicodedata.category(bad) == "Cs":
            return "the name is not valid UTF-8"
        return f"control or format character U+{ord(bad):04X} in the name"
    size = len(name.encode("utf-8"))
    if size > _MAX_NAME_BYTES:
        return f"name of {size} bytes (at most {_MAX_NAME_BYTES})"
    drive = len(name) > 1 and name[0].isalpha() and name[1] == ":"  # C:... on Windows
    if name.startswith(("/", "\\")) or drive:
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "path escapes the shard"
    if "/" in name or "\\" in name:
        return "member in a sub-folder (sample members are flat)"
    key, dot, ext = name.partition(".")
    if not key:
        return "empty sample key"
    if not dot or not ext:
        return "no extension (members are named KEY.EXT)"
    if "" in ext.split("."):
        return "empty extension part"
    return None


def type_problem(member: tarfile.TarInfo) -> str | None:
    # Only plain files: a link or device could point outside wherever the shard is extracted.
    if member.isreg() and not member.issparse():
        return None
    kinds = [
        ("symlink", member.issym()),
        ("hardlink", member.islnk()),
        ("directory", member.isdir()),
        ("device", member.isdev()),
        ("sparse file", member.issparse()),
    ]
    kind = next((name for name, hit in kinds if hit), f"tar type {member.type!r}")
    return f"not a regular file ({kind})"


class HeaderRefused(tarfile.TarError):
    pass


class CheckedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses, before tarfile reads them, extended headers too large or too
    deeply chained (tarfile reads one whole into memory, and follows chains recursively)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise HeaderRefused("a GNU sparse member (not a regular file)")
        if self.type not in _EXTENDED:
            return super()._proc_member(tarfile_)
        if self.size > _MAX_HEADER_BYTES:
            raise HeaderRefused(
                f"an extended header of {self.size} bytes (at most {_MAX_HEADER_BYTES})"
            )
        chain = getattr(tarfile_, "_muss_chain", 0) + 1
        if chain > _MAX_HEADER_CHAIN:
            raise HeaderRefused(f"more than {_MAX_HEADER_CHAIN} chained extended headers")
        tarfile_._muss_chain = chain  # type: ignore[attr-defined]
        try:
            return super()._proc_member(tarfile_)
        finally:
            tarfile_._muss_chain = chain - 1  # type: ignore[attr-defined]
